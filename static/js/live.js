/* A WebSocket subscription that reconnects with back-off and resumes with ?since=<last seq seen>. */
(function () {
  "use strict";
  var NO_RETRY = { 4401: "not signed in", 4403: "not allowed", 4404: "not found" };
  window.mlp = window.mlp || {};

  /**
   * mlp.live(path, {since, trackSeq, onMessage, indicator})
   * - since: resume point (number) or null; trackSeq: advance it from each message's "seq".
   * - onMessage(message): called for every data message (pings are swallowed).
   * - indicator: element whose text/class shows the connection state.
   */
  window.mlp.live = function (path, options) {
    var since = options.since;
    var attempt = 0;
    var socket = null;
    var stopped = false;
    var indicator = options.indicator || null;

    function show(connected, text) {
      if (!indicator) return;
      indicator.textContent = text;
      indicator.classList.toggle("connected", connected);
    }

    function url() {
      var scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
      var query = options.trackSeq && typeof since === "number" ? "?since=" + since : "";
      return scheme + "//" + window.location.host + path + query;
    }

    function connect() {
      if (stopped) return;
      socket = new WebSocket(url());
      socket.addEventListener("open", function () {
        attempt = 0;
        show(true, "Live");
      });
      socket.addEventListener("message", function (event) {
        var message;
        try { message = JSON.parse(event.data); } catch (err) { return; }
        if (!message) return;
        if (message.type === "ping") {
          // Answering keeps the connection from being closed as idle.
          socket.send(JSON.stringify({ type: "pong" }));
          return;
        }
        if (message.type === "pong" || message.type === "subscribed" || message.type === "error") return;
        if (message.type === "resync") {
          if (!options.trackSeq) return; // per-run gaps in a table stream: the next event carries fresh values
          // The server dropped messages for us: reconnect and catch up from the point it names.
          if (typeof message.from_seq === "number") since = message.from_seq;
          socket.close();
          return;
        }
        if (options.trackSeq && typeof message.seq === "number") {
          if (typeof since === "number" && message.seq <= since && message.type !== "catchup") return;
          if (typeof since !== "number" || message.seq > since) since = message.seq;
        }
        options.onMessage(message);
      });
      socket.addEventListener("close", function (event) {
        if (stopped) return;
        if (NO_RETRY[event.code]) {
          show(false, "Live updates off (" + NO_RETRY[event.code] + ")");
          return;
        }
        attempt += 1;
        var delay = Math.min(15000, 500 * Math.pow(2, attempt));
        show(false, "Reconnecting…");
        window.setTimeout(connect, delay);
      });
    }

    window.addEventListener("pagehide", function () {
      stopped = true;
      if (socket) socket.close();
    });
    connect();
    return {
      stop: function () { stopped = true; if (socket) socket.close(); },
      since: function () { return since; }
    };
  };

  /** Python-like "%.5g" so live cells match the server-rendered ones. */
  window.mlp.formatValue = function (value) {
    if (value === null || value === undefined) return "";
    if (typeof value === "string") return value;
    if (!isFinite(value)) return isNaN(value) ? "NaN" : (value > 0 ? "Infinity" : "-Infinity");
    if (value === 0) return "0";
    var exponent = Math.floor(Math.log10(Math.abs(value)));
    if (exponent < -4 || exponent >= 5) {
      var parts = value.toExponential(4).split("e");
      var mantissa = parts[0].indexOf(".") >= 0 ? parts[0].replace(/0+$/, "").replace(/\.$/, "") : parts[0];
      var exp = parseInt(parts[1], 10);
      return mantissa + "e" + (exp < 0 ? "-" : "+") + (Math.abs(exp) < 10 ? "0" : "") + Math.abs(exp);
    }
    var text = value.toPrecision(5);
    return text.indexOf(".") >= 0 ? text.replace(/0+$/, "").replace(/\.$/, "") : text;
  };

  /** Read a json_script block. */
  window.mlp.readJson = function (id) {
    var el = document.getElementById(id);
    return el ? JSON.parse(el.textContent) : null;
  };
})();
