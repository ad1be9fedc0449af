/* Small behaviours shared by every page. No inline scripts anywhere: pages opt in with classes/data attributes. */
(function () {
  "use strict";
  // Forms marked js-autosubmit submit when a select changes (the team switcher); their button hides.
  document.querySelectorAll("form.js-autosubmit").forEach(function (form) {
    form.querySelectorAll(".js-hide-with-js").forEach(function (el) { el.classList.add("hidden"); });
    form.querySelectorAll("select").forEach(function (select) {
      select.addEventListener("change", function () { form.requestSubmit ? form.requestSubmit() : form.submit(); });
    });
  });
  // <time data-relative> shows "3 min ago" with the exact time as a tooltip.
  function relative(ms) {
    var diff = (Date.now() - ms) / 1000;
    if (diff < 0) diff = 0;
    if (diff < 60) return Math.round(diff) + " s ago";
    if (diff < 3600) return Math.round(diff / 60) + " min ago";
    if (diff < 86400) return Math.round(diff / 3600) + " h ago";
    return Math.round(diff / 86400) + " d ago";
  }
  function refreshTimes() {
    document.querySelectorAll("time[data-relative]").forEach(function (el) {
      var ms = Date.parse(el.getAttribute("datetime"));
      if (!isNaN(ms)) { el.textContent = relative(ms); el.title = new Date(ms).toLocaleString(); }
    });
  }
  refreshTimes();
  setInterval(refreshTimes, 30000);
  // Buttons with data-confirm ask before submitting their form (the server asks again for destructive actions).
  document.querySelectorAll("[data-confirm]").forEach(function (el) {
    el.addEventListener("click", function (event) {
      if (!window.confirm(el.getAttribute("data-confirm"))) event.preventDefault();
    });
  });
  // Links the mlflow client prints ("View run at http://host/#/experiments/1/runs/<id>") use MLflow's
  // hash routes; open our page for the same run or experiment (after login, when the login page shows).
  var mlflowRoute = /^#\/experiments\/(\d+)(?:\/runs\/([0-9a-f]{32}))?\/?$/.exec(window.location.hash);
  if (mlflowRoute) {
    var target = mlflowRoute[2] ? "/runs/" + mlflowRoute[2] + "/" : "/experiments/" + mlflowRoute[1] + "/";
    var next = document.querySelector('#login-form input[name="next"]');
    if (next) { next.value = target; } else { window.location.replace(target); }
  }
  window.mlp = window.mlp || {};
  window.mlp.relativeTime = relative;
})();
