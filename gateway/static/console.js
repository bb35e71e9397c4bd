// The console's small enhancements. Every page works without this file.
"use strict";
(function () {
  // One press per form: a second click while the first request runs does nothing.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.dataset.submitted === "1") { event.preventDefault(); return; }
    form.dataset.submitted = "1";
  });
  // Coming back to a page (the back button) makes its forms usable again.
  window.addEventListener("pageshow", function () {
    document.querySelectorAll("form[data-submitted]").forEach(function (form) {
      delete form.dataset.submitted;
    });
  });
  // The error summary takes the focus, so a screen reader announces the problems first.
  var summary = document.querySelector(".error-summary");
  if (summary) { summary.focus(); }
})();
