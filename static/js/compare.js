/* Compare: overlaid curves per metric (one colour per run) and an "only differences" switch for the tables. */
(function () {
  "use strict";
  var data = window.mlp.readJson("compare-chart-data");
  if (!data) return;
  var charts = [];
  var controls = document.getElementById("chart-controls");
  var current = window.mlp.charts.bindControls(controls, charts);
  var settings = current();
  document.querySelectorAll("[data-compare-chart]").forEach(function (holder) {
    var key = holder.getAttribute("data-compare-chart");
    var perRun = data.series[key] || {};
    var series = data.runs.map(function (run) {
      return { label: run.name, points: perRun[run.id] || [], startTime: data.start_times[run.id] };
    });
    charts.push(new window.mlp.charts.MetricChart(holder, {
      series: series, mode: settings.mode, smoothing: settings.smoothing, log: settings.log, showRaw: false
    }));
  });
  var onlyDiff = document.getElementById("only-differences");
  if (onlyDiff) {
    onlyDiff.addEventListener("change", function () {
      document.querySelectorAll("tr[data-same]").forEach(function (row) {
        row.classList.toggle("hidden", onlyDiff.checked);
      });
    });
  }
})();
