/* Runs table: remembered column choice, compare selection, live rows over the experiment WebSocket. */
(function () {
  "use strict";
  var config = window.mlp.readJson("runs-live-config");
  if (!config) return;
  var storageKey = "mlp.runs.columns." + config.experiment_id;
  var toggles = Array.prototype.slice.call(document.querySelectorAll("[data-col-toggle]"));

  function savedColumns() {
    try {
      var raw = window.localStorage.getItem(storageKey);
      return raw ? JSON.parse(raw) : null;
    } catch (err) { return null; }
  }

  function applyColumns(visible) {
    toggles.forEach(function (toggle) {
      var name = toggle.getAttribute("data-col-toggle");
      var show = visible ? visible.indexOf(name) >= 0 : toggle.hasAttribute("data-default-visible");
      toggle.checked = show;
      document.querySelectorAll('[data-col="' + CSS.escape(name) + '"]').forEach(function (cell) {
        cell.classList.toggle("hidden", !show);
      });
    });
  }

  function chosen() {
    return toggles.filter(function (t) { return t.checked; }).map(function (t) { return t.getAttribute("data-col-toggle"); });
  }

  applyColumns(savedColumns());
  toggles.forEach(function (toggle) {
    toggle.addEventListener("change", function () {
      var visible = chosen();
      try { window.localStorage.setItem(storageKey, JSON.stringify(visible)); } catch (err) { /* private mode */ }
      applyColumns(visible);
    });
  });
  var reset = document.getElementById("columns-reset");
  if (reset) {
    reset.addEventListener("click", function () {
      try { window.localStorage.removeItem(storageKey); } catch (err) { /* ignore */ }
      applyColumns(null);
    });
  }

  // Compare: enabled once two runs are ticked.
  var compareButton = document.getElementById("compare-button");
  function updateCompare() {
    var count = document.querySelectorAll('input[name="runs"]:checked').length;
    compareButton.disabled = count < 2;
    compareButton.textContent = count >= 2 ? "Compare " + count + " runs" : "Compare selected";
    compareButton.title = count < 2 ? "Tick two or more runs to compare them" : "";
  }
  document.addEventListener("change", function (event) {
    if (event.target && event.target.name === "runs") updateCompare();
  });
  updateCompare();

  // Live updates.
  var table = document.getElementById("runs-table");
  var tbody = table ? table.querySelector("tbody") : null;
  var banner = document.getElementById("new-runs-banner");
  var newRuns = 0;
  var runCount = document.getElementById("run-count");

  function flash(el, cls) {
    el.classList.remove(cls);
    void el.offsetWidth; // restart the CSS animation
    el.classList.add(cls);
  }

  function setStatus(row, status) {
    var badge = row.querySelector("[data-status-badge]");
    if (!badge || !status) return;
    badge.textContent = status;
    badge.className = "badge " + status.toLowerCase();
  }

  function addRow(message) {
    var run = message.run || {};
    var row = document.createElement("tr");
    row.setAttribute("data-run-id", message.run_id);
    var cells = [];
    var select = document.createElement("td");
    var box = document.createElement("input");
    box.type = "checkbox"; box.name = "runs"; box.value = message.run_id; box.setAttribute("form", "compare-form");
    box.setAttribute("aria-label", "Select " + (run.name || message.run_id) + " for comparison");
    select.appendChild(box);
    cells.push(select);
    var nameCell = document.createElement("td");
    var link = document.createElement("a");
    link.href = config.run_url_template.replace("RUN_UUID", message.run_id);
    link.textContent = run.name || message.run_id;
    nameCell.appendChild(link);
    cells.push(nameCell);
    var statusCell = document.createElement("td");
    statusCell.setAttribute("data-cell", "status");
    var badge = document.createElement("span");
    badge.setAttribute("data-status-badge", "");
    statusCell.appendChild(badge);
    cells.push(statusCell);
    var started = document.createElement("td");
    var time = document.createElement("time");
    var startMs = run.start_time || Date.now();
    time.setAttribute("datetime", new Date(startMs).toISOString());
    time.setAttribute("data-relative", "");
    time.textContent = window.mlp.relativeTime(startMs);
    started.appendChild(time);
    cells.push(started);
    var duration = document.createElement("td");
    duration.setAttribute("data-cell", "duration");
    cells.push(duration);
    var visible = chosen();
    config.columns.forEach(function (name) {
      var td = document.createElement("td");
      td.setAttribute("data-col", name);
      if (name.indexOf("metrics.") === 0) td.className = "num";
      if (visible.indexOf(name) < 0) td.classList.add("hidden");
      cells.push(td);
    });
    cells.forEach(function (td) { row.appendChild(td); });
    setStatus(row, run.status || "RUNNING");
    tbody.insertBefore(row, tbody.firstChild);
    flash(row, "is-new");
    return row;
  }

  function onMessage(message) {
    if (!message.run_id) return;
    var row = tbody ? tbody.querySelector('tr[data-run-id="' + CSS.escape(message.run_id) + '"]') : null;
    if (!row && message.kind === "created") {
      if (runCount) runCount.textContent = String(parseInt(runCount.textContent, 10) + 1);
      if (tbody && config.first_page_default_sort) {
        row = addRow(message);
      } else {
        newRuns += 1;
        document.getElementById("new-runs-text").textContent =
          newRuns + (newRuns === 1 ? " new run started." : " new runs started.");
        banner.classList.remove("hidden");
        return;
      }
    }
    if (!row) return;
    if (message.run) setStatus(row, message.run.status);
    var latest = message.latest || {};
    Object.keys(latest).forEach(function (key) {
      var cell = row.querySelector('td[data-col="' + CSS.escape("metrics." + key) + '"]');
      if (!cell) return;
      var point = latest[key];
      cell.textContent = window.mlp.formatValue(point[2]);
      cell.title = "step " + point[0];
      flash(cell, "ticked");
    });
  }

  window.mlp.live(config.ws_path, {
    since: null,
    trackSeq: false,
    onMessage: onMessage,
    indicator: document.getElementById("live-indicator")
  });
})();
