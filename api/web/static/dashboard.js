// Draws the dashboard's charts with the locally served Chart.js; the same numbers are in the
// table beside each chart, so nothing is lost where the library is missing.
(function () {
  "use strict";
  var source = document.getElementById("chart-data");
  if (!source || typeof window.Chart === "undefined") { return; }
  var charts = JSON.parse(source.textContent);
  var palette = ["#1d4f91", "#c8553d", "#2a9d8f", "#e9c46a", "#6d597a", "#8ab17d", "#e76f51",
                 "#264653", "#b56576", "#457b9d", "#f4a261", "#3d405b", "#81b29a"];
  window.consortiaCharts = {};
  charts.forEach(function (c) {
    var canvas = document.getElementById("chart-" + c.id);
    if (!canvas) { return; }
    var round = c.type === "doughnut" || c.type === "pie";
    var colours = c.id === "progress" ? ["#1d4f91", "#d9dee7"]
                                      : c.labels.map(function (_, i) { return palette[i % palette.length]; });
    window.consortiaCharts[c.id] = new window.Chart(canvas, {
      type: c.type,
      data: {labels: c.labels, datasets: [{label: c.title, data: c.values,
             backgroundColor: round ? colours : "#1d4f91", borderWidth: round ? 1 : 0}]},
      options: {
        responsive: true, maintainAspectRatio: false, animation: false,
        indexAxis: c.type === "bar" && c.labels.length > 4 ? "y" : "x",
        plugins: {legend: {display: round, position: "bottom"}},
        scales: round ? {} : {x: {beginAtZero: true, ticks: {precision: 0}},
                              y: {beginAtZero: true, ticks: {precision: 0}}}
      }
    });
  });
  document.documentElement.dataset.chartsDrawn = String(Object.keys(window.consortiaCharts).length);
})();
