// Draws every chart of the page: each element with data-chart="key" gets the Vega-Lite spec
// specs[key] from the JSON block #chart-specs (vendored vega-embed, rendered as SVG).
(function () {
  "use strict";
  var block = document.getElementById("chart-specs");
  if (!block) return;
  var specs = JSON.parse(block.textContent);
  var pending = [];
  document.querySelectorAll("[data-chart]").forEach(function (el) {
    var spec = specs[el.getAttribute("data-chart")];
    if (!spec) return;
    pending.push(
      vegaEmbed(el, spec, { actions: false, renderer: "svg" }).catch(function (err) {
        el.textContent = "This chart could not be drawn: " + err;
        console.error(err);
      })
    );
  });
  Promise.all(pending).then(function () {
    document.body.setAttribute("data-charts-ready", String(pending.length));
  });
})();
