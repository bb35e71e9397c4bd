// The New link page's enhancements (the page works without them): an "Add an item" button,
// and a live summary of what the SERVER understood (POST /links/new/preview). Money is never
// parsed here: the server's reading is shown as it sends it.
"use strict";
(function () {
  var form = document.getElementById("link-form");
  if (!form) { return; }
  var rows = document.getElementById("item-rows");
  var add = document.getElementById("add-item");
  var live = document.getElementById("live-summary");
  var max = rows ? parseInt(rows.dataset.max || "20", 10) : 0;

  function renumber(row, number) {
    row.querySelectorAll("[id], [for], [name], [aria-describedby]").forEach(function (el) {
      ["id", "for", "name", "aria-describedby"].forEach(function (attr) {
        var value = el.getAttribute(attr);
        if (value) { el.setAttribute(attr, value.replace(/item-\d+-/g, "item-" + number + "-")); }
      });
    });
    row.querySelectorAll("label").forEach(function (label) {
      label.textContent = label.textContent.replace(/\d+/, String(number));
    });
  }

  if (rows && add) {
    add.parentElement.hidden = false;
    add.addEventListener("click", function () {
      var all = rows.querySelectorAll(".item-row");
      if (all.length >= max) { add.disabled = true; return; }
      var row = all[all.length - 1].cloneNode(true);
      row.querySelectorAll(".error").forEach(function (el) { el.remove(); });
      row.querySelectorAll(".field-error").forEach(function (el) { el.classList.remove("field-error"); });
      row.querySelectorAll("input").forEach(function (input) {
        input.value = "";
        input.removeAttribute("aria-invalid");
        input.removeAttribute("aria-describedby");
      });
      renumber(row, all.length + 1);
      rows.appendChild(row);
      if (all.length + 1 >= max) { add.disabled = true; }
      row.querySelector("input").focus();
    });
  }

  if (!live || !window.fetch) { return; }
  var timer = null;
  var sequence = 0;
  function preview() {
    var mine = ++sequence;
    var body = new URLSearchParams(new FormData(form));
    var csrf = form.querySelector("input[name=csrf]");
    fetch(form.dataset.preview, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRF-Token": csrf ? csrf.value : "", "Accept": "application/json" },
      body: body
    }).then(function (response) {
      if (!response.ok) { throw new Error(String(response.status)); }
      return response.json();
    }).then(function (answer) {
      if (mine !== sequence) { return; }  // an older answer arriving late
      live.innerHTML = answer.html;  // rendered and escaped by the server's template
      live.hidden = false;
    }).catch(function () { /* the Check button still works */ });
  }
  form.addEventListener("input", function () {
    window.clearTimeout(timer);
    timer = window.setTimeout(preview, 500);
  });
  form.addEventListener("change", function () {
    window.clearTimeout(timer);
    timer = window.setTimeout(preview, 200);
  });
})();
