// One press per form: a second tap on Pay (or "Email me a new link") while the first is on its
// way is ignored, and the button says what is happening. Without this script the forms work
// the same, and the server makes a repeated press harmless; this only spares the payer the
// doubt. Loaded from our own origin (CSP script-src 'self'); no inline script anywhere.
"use strict";
document.addEventListener("submit", function (event) {
  var form = event.target;
  if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-once")) return;
  if (form.getAttribute("data-sent") === "1") {
    event.preventDefault();
    return;
  }
  form.setAttribute("data-sent", "1");
  var button = form.querySelector("button[type=submit]");
  if (button) {
    button.setAttribute("aria-disabled", "true");
    var busy = button.getAttribute("data-busy");
    if (busy) {
      button.setAttribute("data-label", button.textContent);
      button.textContent = busy;
    }
  }
});
// Back from Stripe's page, the browser may show this page from its cache, form still marked as
// sent: make it pressable again.
window.addEventListener("pageshow", function () {
  document.querySelectorAll("form[data-sent]").forEach(function (form) {
    form.removeAttribute("data-sent");
    var button = form.querySelector("button[type=submit]");
    if (!button) return;
    button.removeAttribute("aria-disabled");
    var label = button.getAttribute("data-label");
    if (label) button.textContent = label;
  });
});
