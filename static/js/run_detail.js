/* Run detail: one chart per metric, live points appended from the run WebSocket while the run is active. */
(function () {
  "use strict";
  var data = window.mlp.readJson("run-chart-data");
  if (!data) return;
  var grid = document.getElementById("charts");
  var empty = document.getElementById("charts-empty");
  var charts = [];
  var byKey = {};
  var current = window.mlp.charts.bindControls(document.getElementById("chart-controls"), charts);

  function lastValueText(points) {
    if (!points.length) return "";
    var p = points[points.length - 1];
    return window.mlp.formatValue(p[2]) + " @ step " + p[0];
  }

  /** Whether a series has a value a chart can draw (NaN and ±inf are gaps). */
  function hasFinite(points) {
    return points.some(function (p) { return typeof p[2] === "number" && isFinite(p[2]); });
  }

  function addChart(key, points) {
    var card = document.createElement("section");
    card.className = "chart-card";
    card.setAttribute("data-metric-key", key);
    var title = document.createElement("h3");
    var name = document.createElement("span");
    name.textContent = key;
    var latest = document.createElement("span");
    latest.className = "muted small";
    latest.setAttribute("data-latest", "");
    latest.textContent = lastValueText(points);
    title.appendChild(name);
    title.appendChild(latest);
    var holder = document.createElement("div");
    holder.className = "chart";
    holder.setAttribute("role", "img");
    holder.setAttribute("aria-label", "Chart of " + key);
    var note = document.createElement("p");
    note.className = "muted small chart-note";
    note.textContent = "Only NaN or infinite values so far: nothing to draw.";
    note.hidden = hasFinite(points);
    card.appendChild(title);
    card.appendChild(note);
    card.appendChild(holder);
    // Keep cards in key order.
    var next = null;
    Array.prototype.forEach.call(grid.children, function (child) {
      if (!next && child.getAttribute("data-metric-key") > key) next = child;
    });
    grid.insertBefore(card, next);
    if (empty) empty.classList.add("hidden");
    var settings = current();
    var chart = new window.mlp.charts.MetricChart(holder, {
      series: [{ label: key, points: points.slice(), startTime: data.start_time }],
      mode: settings.mode,
      smoothing: settings.smoothing,
      log: settings.log,
      showRaw: true
    });
    chart.latestEl = latest;
    chart.noteEl = note;
    charts.push(chart);
    byKey[key] = chart;
    return chart;
  }

  Object.keys(data.series).sort().forEach(function (key) { addChart(key, data.series[key]); });

  function updateLatestRow(key, points) {
    var row = document.querySelector('tr[data-latest-key="' + CSS.escape(key) + '"]');
    if (!row || !points.length) return;
    var last = points[points.length - 1];
    row.querySelector("[data-value]").textContent = window.mlp.formatValue(last[2]);
    row.querySelector("[data-step]").textContent = String(last[0]);
  }

  function setStatus(status) {
    var badge = document.querySelector("[data-run-status] [data-status-badge]");
    if (!badge || !status) return;
    badge.textContent = status;
    badge.className = "badge " + status.toLowerCase();
  }

  function onMessage(message) {
    if (message.run_id && message.run_id !== data.run_id) return;
    var metrics = message.metrics || {};
    Object.keys(metrics).forEach(function (key) {
      var points = metrics[key];
      var chart = byKey[key];
      if (!chart) { addChart(key, points); return; }
      if (chart.append(0, points)) chart.latestEl.textContent = lastValueText(chart.series[0].points);
      chart.noteEl.hidden = hasFinite(chart.series[0].points);
      updateLatestRow(key, chart.series[0].points);
    });
    if (message.run) setStatus(message.run.status);
  }

  if (data.live) {
    window.mlp.live(data.ws_path, {
      since: data.since,
      trackSeq: true,
      onMessage: onMessage,
      indicator: document.getElementById("live-indicator")
    });
  }
})();
