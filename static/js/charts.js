/* Metric charts on uPlot: x axis by step / wall time / relative time, EMA smoothing, log scale, live append. */
(function () {
  "use strict";
  window.mlp = window.mlp || {};
  var PALETTE = ["#2457d6", "#e4572e", "#17a673", "#9b51e0", "#f2a20c", "#0aa3c2", "#d6336c", "#5c6677", "#7a9e1f", "#b5651d"];
  var HEIGHT = 240;

  /** Non-finite values ("NaN", "Infinity" strings, nulls) are gaps on a chart. */
  function toNumber(value) {
    return typeof value === "number" && isFinite(value) ? value : null;
  }

  /** TensorBoard-style debiased exponential moving average; gaps stay gaps. */
  function smooth(values, weight) {
    var out = new Array(values.length);
    var last = 0;
    var count = 0;
    for (var i = 0; i < values.length; i++) {
      var y = values[i];
      if (y === null) { out[i] = null; continue; }
      last = last * weight + (1 - weight) * y;
      count += 1;
      out[i] = last / (1 - Math.pow(weight, count));
    }
    return out;
  }

  function alpha(hex, a) {
    var n = parseInt(hex.slice(1), 16);
    return "rgba(" + (n >> 16) + "," + ((n >> 8) & 255) + "," + (n & 255) + "," + a + ")";
  }

  function formatSeconds(seconds) {
    if (seconds === null || seconds === undefined) return "";
    var s = Math.round(seconds);
    if (Math.abs(s) < 60) return s + "s";
    if (Math.abs(s) < 3600) return Math.floor(s / 60) + "m" + (s % 60 ? " " + (s % 60) + "s" : "");
    return Math.floor(s / 3600) + "h " + Math.floor((s % 3600) / 60) + "m";
  }

  /** One series' [x[], y[]] for a mode, sorted by x, duplicates of x keeping the last value. */
  function columns(points, mode, startTime, log) {
    var pairs = points.map(function (p) {
      var x = mode === "step" ? p[0] : mode === "wall" ? p[1] / 1000 : (p[1] - startTime) / 1000;
      var y = toNumber(p[2]);
      if (log && y !== null && y <= 0) y = null;
      return [x, y];
    });
    if (mode !== "step") pairs.sort(function (a, b) { return a[0] - b[0]; });
    var xs = [];
    var ys = [];
    for (var i = 0; i < pairs.length; i++) {
      if (xs.length && xs[xs.length - 1] === pairs[i][0]) { ys[ys.length - 1] = pairs[i][1]; continue; }
      xs.push(pairs[i][0]);
      ys.push(pairs[i][1]);
    }
    return [xs, ys];
  }

  /**
   * A chart of one metric for one or more runs.
   * spec: {series: [{label, points: [[step, timestamp, value]], startTime}], mode, smoothing, log, showRaw}
   */
  function MetricChart(el, spec) {
    this.el = el;
    this.series = spec.series;
    this.settings = { mode: spec.mode || "step", smoothing: spec.smoothing || 0, log: !!spec.log };
    this.showRaw = spec.showRaw !== false;
    this.plot = null;
    this.build();
    var self = this;
    if (window.ResizeObserver) {
      this.observer = new ResizeObserver(function () {
        if (self.plot && self.el.clientWidth && Math.abs(self.plot.width - self.el.clientWidth) > 2) {
          self.plot.setSize({ width: self.el.clientWidth, height: HEIGHT });
        }
      });
      this.observer.observe(el);
    }
  }

  MetricChart.prototype.data = function () {
    var s = this.settings;
    var tables = this.series.map(function (series) { return columns(series.points, s.mode, series.startTime || 0, s.log); });
    var aligned = tables.length === 1 ? tables[0] : uPlot.join(tables);
    var data = [aligned[0]];
    var smoothing = s.smoothing;
    var showRaw = this.showRaw || smoothing === 0;
    for (var i = 1; i < aligned.length; i++) {
      if (showRaw) data.push(aligned[i]);
      if (smoothing > 0) data.push(smooth(aligned[i], smoothing));
    }
    return data;
  };

  MetricChart.prototype.uplotSeries = function () {
    var s = this.settings;
    var xLabel = s.mode === "step" ? "step" : s.mode === "wall" ? "time" : "elapsed";
    var out = [{ label: xLabel, value: s.mode === "relative" ? function (u, v) { return formatSeconds(v); } : undefined }];
    var showRaw = this.showRaw || s.smoothing === 0;
    var multiple = this.series.length > 1;
    this.series.forEach(function (series, index) {
      var color = PALETTE[index % PALETTE.length];
      if (showRaw) {
        out.push({
          label: series.label + (s.smoothing > 0 ? " (raw)" : ""),
          stroke: s.smoothing > 0 ? alpha(color, 0.25) : color,
          width: multiple ? 1.5 : 1.75,
          spanGaps: true,
          points: { show: false },
          value: function (u, v) { return window.mlp.formatValue(v); }
        });
      }
      if (s.smoothing > 0) {
        out.push({
          label: series.label + (showRaw ? " (smoothed)" : ""),
          stroke: color,
          width: 1.75,
          spanGaps: true,
          points: { show: false },
          value: function (u, v) { return window.mlp.formatValue(v); }
        });
      }
    });
    return out;
  };

  MetricChart.prototype.build = function () {
    if (this.plot) { this.plot.destroy(); this.plot = null; }
    var s = this.settings;
    var opts = {
      width: this.el.clientWidth || 400,
      height: HEIGHT,
      scales: { x: { time: s.mode === "wall" }, y: { distr: s.log ? 3 : 1 } },
      axes: [
        { stroke: "#5c6677", grid: { stroke: "#eef0f3" }, values: s.mode === "relative" ? function (u, splits) { return splits.map(formatSeconds); } : undefined },
        { stroke: "#5c6677", grid: { stroke: "#eef0f3" }, size: 64, values: function (u, splits) { return splits.map(function (v) { return window.mlp.formatValue(v); }); } }
      ],
      series: this.uplotSeries(),
      legend: { live: true },
      cursor: { drag: { x: true, y: false } }
    };
    this.plot = new uPlot(opts, this.data(), this.el);
    this.el.setAttribute("data-points", String(this.pointCount()));
  };

  MetricChart.prototype.pointCount = function () {
    return this.series.reduce(function (sum, series) { return sum + series.points.length; }, 0);
  };

  /** Change x mode / smoothing / log scale; scale changes need a new plot, smoothing only new data. */
  MetricChart.prototype.update = function (settings) {
    var rebuild = settings.mode !== this.settings.mode || settings.log !== this.settings.log ||
      (settings.smoothing > 0) !== (this.settings.smoothing > 0);
    this.settings = { mode: settings.mode, smoothing: settings.smoothing, log: settings.log };
    if (rebuild) this.build();
    else this.plot.setData(this.data());
  };

  /** Append live points to one series without rebuilding the chart (points with a step already shown are skipped). */
  MetricChart.prototype.append = function (seriesIndex, points) {
    var series = this.series[seriesIndex];
    var last = series.points.length ? series.points[series.points.length - 1][0] : null;
    var added = 0;
    points.forEach(function (p) {
      if (last === null || p[0] > last) { series.points.push(p); last = p[0]; added += 1; }
    });
    if (added) {
      this.plot.setData(this.data());
      this.el.setAttribute("data-points", String(this.pointCount()));
    }
    return added;
  };

  /** Wire the shared controls (x axis select, smoothing slider, log checkbox) to a set of charts. */
  function bindControls(root, charts) {
    var mode = root.querySelector("[data-control=x-axis]");
    var smoothing = root.querySelector("[data-control=smoothing]");
    var smoothingOut = root.querySelector("[data-control=smoothing-value]");
    var log = root.querySelector("[data-control=log]");
    var key = "mlp.charts.settings";
    try {
      var saved = JSON.parse(window.localStorage.getItem(key) || "null");
      if (saved) {
        if (saved.mode) mode.value = saved.mode;
        if (typeof saved.smoothing === "number") smoothing.value = String(saved.smoothing);
        log.checked = !!saved.log;
      }
    } catch (err) { /* ignore */ }
    function current() {
      return { mode: mode.value, smoothing: parseFloat(smoothing.value) || 0, log: log.checked };
    }
    function apply() {
      var settings = current();
      if (smoothingOut) smoothingOut.textContent = settings.smoothing.toFixed(2);
      try { window.localStorage.setItem(key, JSON.stringify(settings)); } catch (err) { /* ignore */ }
      charts.forEach(function (chart) { chart.update(settings); });
    }
    [mode, log].forEach(function (el) { el.addEventListener("change", apply); });
    smoothing.addEventListener("input", apply);
    if (smoothingOut) smoothingOut.textContent = current().smoothing.toFixed(2);
    return current;
  }

  window.mlp.charts = {
    MetricChart: MetricChart,
    bindControls: bindControls,
    palette: PALETTE,
    smooth: smooth,
    toNumber: toNumber
  };
})();
