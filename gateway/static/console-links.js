// The links list: a "select all on this page" box in the table's header. Without this file each
// link is ticked by hand (the bulk actions work the same); the box stays hidden.
"use strict";
(function () {
  var all = document.getElementById("pick-all");
  if (!all) { return; }
  var boxes = Array.prototype.slice.call(document.querySelectorAll("table.links input[name=link]"));
  if (!boxes.length) { return; }
  var sync = function () {
    var ticked = boxes.filter(function (box) { return box.checked; }).length;
    all.checked = ticked === boxes.length;
    all.indeterminate = ticked > 0 && ticked < boxes.length;
  };
  all.closest(".pick-all").hidden = false;
  all.addEventListener("change", function () {
    boxes.forEach(function (box) { box.checked = all.checked; });
    sync();
  });
  boxes.forEach(function (box) { box.addEventListener("change", sync); });
  sync();
})();
