// Injected by tests/test_report_page.py into a copy of the report page before headless chromium
// opens it, so the DOM dump shows: JavaScript errors, the plots drawn, and the layout a reader
// sees (the widths; ids of tables and plots reaching past the viewport's right edge; ids of plots
// with text cut off at their edges), with every collapsible block closed and then open.
window.reportErrors = [];
window.addEventListener("error", function (event) {
  window.reportErrors.push(String(event.message || event.type));
});
window.addEventListener("unhandledrejection", function (event) {
  window.reportErrors.push("unhandled rejection: " + String(event.reason));
});
function outside(inner, outer) {
  return inner.width > 0 && (inner.left < outer.left - 0.5 || inner.right > outer.right + 0.5
                             || inner.top < outer.top - 0.5 || inner.bottom > outer.bottom + 0.5);
}
function recordLayout(body, suffix) {
  var root = document.documentElement, viewport = {left: 0, top: -1e9, right: root.clientWidth,
                                                   bottom: 1e9, width: 1};
  var wide = new Set(), cut = new Set();
  document.querySelectorAll("table, .plotly-graph-div, .main-svg").forEach(function (element) {
    if (outside(element.getBoundingClientRect(), viewport)) wide.add(element.closest("[id]").id);
  });
  document.querySelectorAll(".plotly-graph-div").forEach(function (plot) {
    var box = plot.getBoundingClientRect();
    plot.querySelectorAll("text").forEach(function (text) {
      if (outside(text.getBoundingClientRect(), box)) cut.add(plot.id);
    });
  });
  var placeholder = new Set();  // Plotly's "new text": an annotation made with no text
  document.querySelectorAll(".plotly-graph-div text").forEach(function (text) {
    if (text.textContent.trim() === "new text") placeholder.add(text.closest("[id]").id);
  });
  body.dataset["placeholder" + suffix] = Array.from(placeholder).join(" ");
  body.dataset["scrollWidth" + suffix] = String(root.scrollWidth);
  body.dataset["wide" + suffix] = Array.from(wide).join(" ");
  body.dataset["cut" + suffix] = Array.from(cut).join(" ");
}
window.addEventListener("load", function () {
  setTimeout(function () {
    var out = document.getElementById("js-errors"), body = document.body;
    out.textContent = window.reportErrors.join("\n");
    out.dataset.count = String(window.reportErrors.length);
    body.dataset.drawnPlots = String(document.querySelectorAll(".js-plotly-plot").length);
    body.dataset.clientWidth = String(document.documentElement.clientWidth);
    body.dataset.innerWidth = String(window.innerWidth);
    recordLayout(body, "");
    var folded = document.querySelectorAll("details");
    folded.forEach(function (block) { block.open = true; });
    recordLayout(body, "Open");
    folded.forEach(function (block) { block.open = false; });
  }, 500);
});
