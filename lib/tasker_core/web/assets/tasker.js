// tasker_core dashboard: the overview's live refresh. Everything else works without script.
// Fetches the stats JSON every few seconds and rewrites the figures ([data-stat] elements)
// and the throughput chart's bars in place. Text is only ever set with textContent.
(function () {
  "use strict";

  function formatInt(value) {
    if (typeof value !== "number" || !isFinite(value)) return "—";
    return String(Math.round(value)).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  }

  function formatMs(ms) {
    if (typeof ms !== "number" || !isFinite(ms)) return "—";
    if (ms < 1000) return String(Math.round(ms * 10) / 10) + " ms";
    var seconds = ms / 1000;
    if (seconds < 60) return seconds.toFixed(2) + " s";
    var minutes = Math.floor(seconds / 60);
    if (minutes < 60) return minutes + " min " + Math.round(seconds - minutes * 60) + " s";
    return Math.floor(minutes / 60) + " h " + (minutes % 60) + " min";
  }

  function formatPercent(value) {
    return typeof value === "number" && isFinite(value) ? value.toFixed(1) + " %" : "—";
  }

  var FORMATS = {
    int: formatInt,
    ms: formatMs,
    percent: formatPercent,
    flag: function (value) { return value === true ? "detected" : "none"; }
  };

  function lookup(object, path) {
    return path.split(".").reduce(function (value, key) {
      return value !== null && typeof value === "object" ? value[key] : undefined;
    }, object);
  }

  function hourSummary(throughput) {
    var succeeded = 0, failed = 0;
    (throughput || []).forEach(function (bucket) {
      succeeded += bucket.succeeded || 0;
      failed += bucket.failed || 0;
    });
    var total = succeeded + failed;
    return { succeeded: succeeded, failed: failed, failure_rate: total > 0 ? failed * 100 / total : null };
  }

  function axisTop(value) {
    if (value <= 1) return 1;
    var magnitude = Math.pow(10, Math.floor(Math.log10(value)));
    var steps = [1, 2, 5, 10];
    for (var i = 0; i < steps.length; i++) {
      if (steps[i] * magnitude >= value) return steps[i] * magnitude;
    }
    return 10 * magnitude;
  }

  function round1(value) {
    return String(Math.round(value * 10) / 10);
  }

  function minuteLabel(iso) {
    var time = new Date(iso);
    if (isNaN(time.getTime())) return String(iso);
    function two(n) { return n < 10 ? "0" + n : String(n); }
    return two(time.getUTCHours()) + ":" + two(time.getUTCMinutes()) + " UTC";
  }

  function updateChart(svg, throughput) {
    if (!svg || !Array.isArray(throughput)) return;
    var left = Number(svg.dataset.plotLeft), top = Number(svg.dataset.plotTop);
    var width = Number(svg.dataset.plotWidth), height = Number(svg.dataset.plotHeight);
    var fill = Number(svg.dataset.barFill);
    var groups = svg.querySelectorAll(".chart-bar");
    if (groups.length !== throughput.length || groups.length === 0) return;
    var slot = width / groups.length;
    var axis = axisTop(throughput.reduce(function (max, b) {
      return Math.max(max, (b.succeeded || 0) + (b.failed || 0));
    }, 0));
    var commands = [];
    var previous = false;
    throughput.forEach(function (bucket, i) {
      var ok = bucket.succeeded || 0, failed = bucket.failed || 0;
      var okHeight = ok * height / axis, failedHeight = failed * height / axis;
      var okY = top + height - okHeight;
      var group = groups[i];
      var x = left + i * slot + slot * (1 - fill) / 2;
      var okRect = group.querySelector(".bar-succeeded"), failedRect = group.querySelector(".bar-failed");
      okRect.setAttribute("x", round1(x));
      okRect.setAttribute("y", round1(okY));
      okRect.setAttribute("height", round1(okHeight));
      failedRect.setAttribute("x", round1(x));
      failedRect.setAttribute("y", round1(okY - failedHeight));
      failedRect.setAttribute("height", round1(failedHeight));
      var title = group.querySelector("title");
      if (title) title.textContent = minuteLabel(bucket.minute) + ": " + ok + " succeeded, " + failed + " failed";
      if (ok + failed === 0) {
        previous = false;
        return;
      }
      var point = round1(left + (i + 0.5) * slot) + " " + round1(top + height * (1 - failed / (ok + failed)));
      commands.push(previous ? "L " + point : "M " + point + " L " + point);
      previous = true;
    });
    var line = svg.querySelector(".rate-line");
    if (line) line.setAttribute("d", commands.join(" "));
    [["1", axis], ["0.5", axis / 2], ["0", 0]].forEach(function (pair) {
      var label = svg.querySelector('[data-axis="' + pair[0] + '"]') ||
        svg.querySelector('[data-axis="' + pair[0] + '.0"]');
      if (label) label.textContent = round1(pair[1]);
    });
    var start = svg.querySelector('[data-time="start"]'), end = svg.querySelector('[data-time="end"]');
    if (start) start.textContent = minuteLabel(throughput[0].minute);
    if (end) end.textContent = minuteLabel(throughput[throughput.length - 1].minute);
  }

  function apply(stats) {
    stats.hour = hourSummary(stats.throughput);
    document.querySelectorAll("[data-stat]").forEach(function (element) {
      var format = FORMATS[element.dataset.format] || String;
      element.textContent = format(lookup(stats, element.dataset.stat));
    });
    document.querySelectorAll("[data-flag]").forEach(function (element) {
      element.classList.toggle("flag-on", lookup(stats, element.dataset.flag) === true);
    });
    updateChart(document.querySelector("#throughput-chart svg"), stats.throughput);
  }

  function start(live) {
    var api = live.dataset.api;
    var interval = Math.max(500, Number(live.dataset.interval) || 2000);
    var text = document.getElementById("live-text");
    var refreshes = 0;
    var busy = false;

    function tick() {
      if (busy || document.hidden) return;
      busy = true;
      fetch(api, { headers: { Accept: "application/json" }, credentials: "same-origin", cache: "no-store" })
        .then(function (response) {
          if (!response.ok) throw new Error("HTTP " + response.status);
          return response.json();
        })
        .then(function (stats) {
          apply(stats);
          refreshes += 1;
          live.dataset.refreshes = String(refreshes);
          live.classList.add("on");
          live.classList.remove("failing");
          text.textContent = "Live · backend " + stats.backend + " · updated " + new Date().toLocaleTimeString();
        })
        .catch(function (error) {
          live.classList.add("failing");
          live.classList.remove("on");
          text.textContent = "Live refresh failed (" + error.message + "); retrying";
        })
        .then(function () { busy = false; });
    }

    tick();
    window.setInterval(tick, interval);
    document.addEventListener("visibilitychange", tick);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var live = document.getElementById("live");
    if (live && live.dataset.api && window.fetch) start(live);
  });
})();
