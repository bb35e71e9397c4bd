// The link detail page's copy button. Without this file the address is in a read-only input,
// selectable and copyable by hand; the button stays hidden.
"use strict";
(function () {
  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    var input = document.getElementById(button.dataset.copy);
    if (!input) { return; }
    var status = button.closest(".copy") && button.closest(".copy").querySelector(".copy-status");
    button.hidden = false;
    button.addEventListener("click", function () {
      var done = function () { if (status) { status.textContent = button.dataset.copied || ""; } };
      input.select();
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(input.value).then(done, function () {
          if (document.execCommand && document.execCommand("copy")) { done(); }
        });
      } else if (document.execCommand && document.execCommand("copy")) {
        done();
      }
    });
  });
  // A read-only address is selected whole when it gets the focus, ready to copy.
  document.querySelectorAll(".copy input[readonly]").forEach(function (input) {
    input.addEventListener("focus", function () { input.select(); });
  });
})();
