// radflow report: pages and filters the QC gallery (plain JavaScript, no library).
// Without JavaScript every card is shown.
(function () {
  "use strict";
  var gallery = document.getElementById("qc-gallery");
  if (!gallery) { return; }
  var cards = Array.prototype.slice.call(gallery.querySelectorAll("figure.card"));
  var perPage = parseInt(gallery.getAttribute("data-per-page"), 10) || 24;
  var filter = document.getElementById("qc-filter");
  var status = document.getElementById("qc-status");
  var prev = document.getElementById("qc-prev");
  var next = document.getElementById("qc-next");
  var label = document.getElementById("qc-page");
  var page = 0;

  function matching() {
    var text = filter.value.trim().toLowerCase();
    var kind = status.value;
    return cards.filter(function (card) {
      var okKind = kind === "all" || card.getAttribute("data-kind") === kind;
      return okKind && card.getAttribute("data-search").toLowerCase().indexOf(text) !== -1;
    });
  }

  function show() {
    var shown = matching();
    var pages = Math.max(1, Math.ceil(shown.length / perPage));
    page = Math.min(Math.max(page, 0), pages - 1);
    var first = page * perPage;
    var visible = new Set(shown.slice(first, first + perPage));
    cards.forEach(function (card) { card.hidden = !visible.has(card); });
    label.textContent = "page " + (page + 1) + " of " + pages + " (" + shown.length + " of " +
      cards.length + " pairs)";
    prev.disabled = page === 0;
    next.disabled = page >= pages - 1;
  }

  filter.addEventListener("input", function () { page = 0; show(); });
  status.addEventListener("change", function () { page = 0; show(); });
  prev.addEventListener("click", function () { page -= 1; show(); });
  next.addEventListener("click", function () { page += 1; show(); });
  show();
}());
