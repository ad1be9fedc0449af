/* Deployment page: live monitoring charts (wall-clock x axis), status and alerts over the deployment WebSocket. */
(function () {
  "use strict";
  var data = window.mlp.readJson("deployment-chart-data");
  if (!data) return;
  var grid = document.getElementById("monitoring-charts");
  var empty = document.getElementById("monitoring-empty");
  var charts = [];
  var byKey = {};
  var controls = document.getElementById("chart-controls");
  var modeSelect = controls.querySelector("[data-control=x-axis]");
  // Monitoring points have no steps: wall time is the natural axis.
  Array.prototype.forEach.call(modeSelect.options, function (option) { if (option.value === "step") option.disabled = true; });
  if (modeSelect.value === "step") modeSelect.value = "wall";
  var current = window.mlp.charts.bindControls(controls, charts);

  function addChart(key, points) {
    var card = document.createElement("section");
    card.className = "chart-card";
    card.setAttribute("data-metric-key", key);
    var title = document.createElement("h3");
    title.textContent = key;
    var holder = document.createElement("div");
    holder.className = "chart";
    holder.setAttribute("role", "img");
    holder.setAttribute("aria-label", "Monitoring chart of " + key);
    card.appendChild(title);
    card.appendChild(holder);
    grid.appendChild(card);
    if (empty) empty.classList.add("hidden");
    var settings = current();
    var first = points.length ? points[0][1] : Date.now();
    var chart = new window.mlp.charts.MetricChart(holder, {
      series: [{ label: key, points: points.slice(), startTime: first }],
      mode: settings.mode === "step" ? "wall" : settings.mode,
      smoothing: settings.smoothing,
      log: settings.log,
      showRaw: true
    });
    charts.push(chart);
    byKey[key] = chart;
  }

  Object.keys(data.series).sort().forEach(function (key) { addChart(key, data.series[key]); });

  function onMessage(message) {
    if (message.kind === "metrics" && message.metrics) {
      Object.keys(message.metrics).forEach(function (key) {
        // Live points are [timestamp, value]; charts take [x-key, timestamp, value].
        var points = message.metrics[key].map(function (p) { return [p[0], p[0], p[1]]; });
        if (byKey[key]) byKey[key].append(0, points);
        else addChart(key, points);
      });
    }
    if (message.deployment && message.deployment.status) {
      var badge = document.getElementById("deployment-status");
      badge.textContent = message.deployment.status;
      badge.className = "badge " + message.deployment.status;
    }
    var alert = message.kind === "alert" && message.event && message.event.details ? message.event.details.alert : null;
    if (alert) showAlert(alert);
    if (message.event) {
      var tbody = document.querySelector("#events-table tbody");
      var row = document.createElement("tr");
      var what = message.event.kind.replace("_", " ") +
        (message.event.to_status ? ": " + (message.event.from_status || "—") + " → " + message.event.to_status : "");
      [String(message.event.seq), what, message.event.actor || "—", new Date(message.event.created_at).toLocaleString()].forEach(function (text, i) {
        var td = document.createElement("td");
        td.textContent = text;
        if (i === 0) td.className = "num";
        row.appendChild(td);
      });
      tbody.insertBefore(row, tbody.firstChild);
      row.classList.add("is-new");
    }
  }

  var COMPARISONS = { gt: ">", gte: ">=", lt: "<", lte: "<=" };

  function showAlert(alert) {
    var tbody = document.querySelector("#alerts-table tbody");
    var empty = tbody.querySelector("[data-alerts-empty]");
    if (empty) empty.remove();
    var row = tbody.querySelector('tr[data-alert-id="' + alert.id + '"]');
    if (!row) {
      row = document.createElement("tr");
      row.setAttribute("data-alert-id", String(alert.id));
      var rule = document.createElement("td");
      rule.className = "mono small";
      rule.textContent = "mean(" + alert.metric + ", " + alert.window_seconds + "s) " +
        (COMPARISONS[alert.comparison] || alert.comparison) + " " + alert.threshold;
      var state = document.createElement("td");
      var badge = document.createElement("span");
      badge.setAttribute("data-alert-state", "");
      state.appendChild(badge);
      var value = document.createElement("td");
      value.className = "num";
      value.setAttribute("data-alert-value", "");
      var raised = document.createElement("td");
      raised.textContent = new Date(alert.raised_at).toLocaleString();
      [rule, state, value, raised].forEach(function (td) { row.appendChild(td); });
      tbody.insertBefore(row, tbody.firstChild);
    }
    var stateBadge = row.querySelector("[data-alert-state]");
    stateBadge.textContent = alert.state;
    stateBadge.className = "badge " + alert.state;
    if (typeof alert.value === "number") row.querySelector("[data-alert-value]").textContent = alert.value.toFixed(4);
    row.classList.remove("is-new");
    void row.offsetWidth;
    row.classList.add("is-new");
  }

  window.mlp.live(data.ws_path, {
    since: data.since,
    trackSeq: true,
    onMessage: onMessage,
    indicator: document.getElementById("live-indicator")
  });
})();
