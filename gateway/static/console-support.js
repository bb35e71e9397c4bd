// The Support page's copy buttons. Without this file each reply is in a read-only text area,
// selectable and copyable by hand; the buttons stay hidden.
"use strict";
(function () {
  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    var area = document.getElementById(button.dataset.copy);
    if (!area) { return; }
    var box = button.closest(".copy");
    var status = box && box.querySelector(".copy-status");
    button.hidden = false;
    button.addEventListener("click", function () {
      var done = function () { if (status) { status.textContent = button.dataset.copied || ""; } };
      area.select();
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(area.value).then(done, function () {
          if (document.execCommand && document.execCommand("copy")) { done(); }
        });
      } else if (document.execCommand && document.execCommand("copy")) {
        done();
      }
    });
  });
})();
