// ctloop web UI: paints the metric charts (canvas line charts, one line or one per compared
// run: drag to zoom, double-click to reset). No library: a run's points come in the canvas's
// data-points; the compare page reads each run's history from the REST API v1.
"use strict";
(function () {
  var PAD = { left: 56, right: 12, top: 10, bottom: 26 };

  function ticks(low, high, count) {
    var span = high - low || Math.abs(high) || 1;
    var raw = span / count, mag = Math.pow(10, Math.floor(Math.log10(raw)));
    var step = [1, 2, 5, 10].map(function (m) { return m * mag; })
      .find(function (s) { return s >= raw; });
    var out = [];
    for (var v = Math.ceil(low / step) * step; v <= high + step * 1e-9; v += step) out.push(v);
    return out;
  }

  function label(v) {
    var a = Math.abs(v);
    return a !== 0 && (a >= 1e5 || a < 1e-3) ? v.toExponential(1) : String(+v.toPrecision(4));
  }

  function valid(p) { return typeof p[0] === "number" && typeof p[1] === "number" && isFinite(p[1]); }

  // series: [{points: [[x, y], ...], colour: "#rrggbb"}], each drawn as one line
  function paint(canvas, series, view) {
    var ctx = canvas.getContext("2d"), w = canvas.width, h = canvas.height;
    var within = series.map(function (s) {
      var shown = s.points.filter(function (p) { return p[0] >= view[0] && p[0] <= view[1]; });
      return { points: shown.length ? shown : s.points, colour: s.colour };
    });
    var ys = [];
    within.forEach(function (s) { s.points.forEach(function (p) { ys.push(p[1]); }); });
    var lowY = ys.reduce(function (a, b) { return Math.min(a, b); }, Infinity);
    var highY = ys.reduce(function (a, b) { return Math.max(a, b); }, -Infinity);
    if (lowY === highY) { lowY -= 0.5 * (Math.abs(lowY) || 1); highY += 0.5 * (Math.abs(highY) || 1); }
    var x = function (v) { return PAD.left + (v - view[0]) / ((view[1] - view[0]) || 1) * (w - PAD.left - PAD.right); };
    var y = function (v) { return h - PAD.bottom - (v - lowY) / (highY - lowY) * (h - PAD.top - PAD.bottom); };
    ctx.clearRect(0, 0, w, h);
    ctx.fillStyle = "#ffffff"; ctx.fillRect(0, 0, w, h);
    ctx.font = "11px system-ui, sans-serif"; ctx.fillStyle = "#374151"; ctx.strokeStyle = "#e5e7eb"; ctx.lineWidth = 1;
    ticks(lowY, highY, 4).forEach(function (t) {
      ctx.beginPath(); ctx.moveTo(PAD.left, y(t)); ctx.lineTo(w - PAD.right, y(t)); ctx.stroke();
      ctx.textAlign = "right"; ctx.fillText(label(t), PAD.left - 6, y(t) + 4);
    });
    var whole = series.every(function (s) { return s.points.every(function (p) { return Number.isInteger(p[0]); }); });
    ticks(view[0], view[1], 6).filter(function (t) { return !whole || Number.isInteger(+t.toFixed(9)); }).forEach(function (t) {
      ctx.textAlign = "center"; ctx.fillText(label(t), x(t), h - 8);
    });
    var painted = 0;
    within.forEach(function (s) {
      ctx.strokeStyle = s.colour; ctx.lineWidth = 2; ctx.beginPath();
      s.points.forEach(function (p, i) { if (i) ctx.lineTo(x(p[0]), y(p[1])); else ctx.moveTo(x(p[0]), y(p[1])); });
      ctx.stroke();
      ctx.fillStyle = s.colour;
      if (s.points.length < 60) s.points.forEach(function (p) { ctx.fillRect(x(p[0]) - 2, y(p[1]) - 2, 4, 4); });
      painted += s.points.length;
    });
    canvas.dataset.painted = String(painted);
    canvas.dataset.lines = String(within.length);
    return function (px) { return view[0] + (px - PAD.left) / (w - PAD.left - PAD.right) * (view[1] - view[0]); };
  }

  // the point of sorted ``points`` whose x is nearest ``v``
  function nearest(points, v) {
    var lo = 0, hi = points.length - 1;
    while (hi - lo > 1) { var mid = (lo + hi) >> 1; if (points[mid][0] < v) lo = mid; else hi = mid; }
    return Math.abs(points[lo][0] - v) <= Math.abs(points[hi][0] - v) ? points[lo] : points[hi];
  }

  // under the pointer: a rule and each series' nearest value (in the canvas's
  // data-readout too), at most 12 series listed
  function readout(canvas, series, at, px) {
    var ctx = canvas.getContext("2d"), w = canvas.width, h = canvas.height, lineH = 14;
    if (px < PAD.left || px > w - PAD.right) return;
    var rows = series.map(function (s) {
      var p = nearest(s.points, at);
      return s.label + "  " + label(p[1]) + "  (step " + label(p[0]) + ")";
    });
    var shown = rows.slice(0, 12);
    if (rows.length > shown.length) shown.push("+" + (rows.length - shown.length) + " more");
    ctx.strokeStyle = "#9ca3af"; ctx.lineWidth = 1; ctx.beginPath();
    ctx.moveTo(px + 0.5, PAD.top); ctx.lineTo(px + 0.5, h - PAD.bottom); ctx.stroke();
    ctx.font = "11px system-ui, sans-serif";
    var boxW = 20 + Math.max.apply(null, shown.map(function (t) { return ctx.measureText(t).width; }));
    var boxH = lineH * shown.length + 8, bx = px + 12 + boxW > w ? px - 12 - boxW : px + 12, by = PAD.top;
    ctx.fillStyle = "rgba(255,255,255,0.94)"; ctx.fillRect(bx, by, boxW, boxH);
    ctx.strokeStyle = "#d1d5db"; ctx.strokeRect(bx + 0.5, by + 0.5, boxW, boxH);
    ctx.textAlign = "left";
    shown.forEach(function (text, i) {
      var ty = by + 4 + lineH * (i + 1) - 3;
      if (series[i] && i < 12) { ctx.fillStyle = series[i].colour; ctx.fillRect(bx + 6, ty - 8, 8, 8); }
      ctx.fillStyle = "#111827"; ctx.fillText(text, bx + 18, ty);
    });
    canvas.dataset.readout = rows.join("; ");
  }

  // a chart of one or more series: drag to zoom into a range of x, double-click to reset,
  // hover for the values
  function zoomable(canvas, series) {
    var xs = [];
    series.forEach(function (s) { xs.push(s.points[0][0], s.points[s.points.length - 1][0]); });
    var full = [Math.min.apply(null, xs), Math.max.apply(null, xs)];
    if (full[0] === full[1]) full = [full[0] - 1, full[1] + 1];
    var view = full.slice(), toX = paint(canvas, series, view), start = null;
    canvas.addEventListener("mousedown", function (e) { start = e.offsetX; });
    canvas.addEventListener("mouseup", function (e) {
      if (start !== null && Math.abs(e.offsetX - start) > 4) {
        var a = toX(Math.min(start, e.offsetX)), b = toX(Math.max(start, e.offsetX));
        view = [a, b]; toX = paint(canvas, series, view);
      }
      start = null;
    });
    canvas.addEventListener("dblclick", function () { view = full.slice(); toX = paint(canvas, series, view); });
    var frame = 0, px = 0;
    canvas.addEventListener("mousemove", function (e) {
      px = e.offsetX;
      if (frame) return;
      frame = requestAnimationFrame(function () {
        frame = 0; toX = paint(canvas, series, view); readout(canvas, series, toX(px), px);
      });
    });
    canvas.addEventListener("mouseleave", function () {
      if (frame) { cancelAnimationFrame(frame); frame = 0; }
      toX = paint(canvas, series, view); delete canvas.dataset.readout;
    });
  }

  function chart(canvas) {
    var points = JSON.parse(canvas.dataset.points || "[]").filter(valid);
    if (points.length) zoomable(canvas, [{ points: points, colour: "#1f6fd1", label: canvas.dataset.title || "" }]);
  }

  // -- small DOM helpers: every value goes in as text, never as HTML -----------------
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") node.textContent = attrs[k]; else node.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { node.appendChild(typeof c === "string" ? document.createTextNode(c) : c); });
    return node;
  }
  function table(head, rows, cls) {
    var t = el("table", cls ? { "class": cls } : {});
    if (head) t.appendChild(el("thead", {}, [el("tr", {}, head.map(function (h) { return el("th", { text: h }); }))]));
    t.appendChild(el("tbody", {}, rows.map(function (r) {
      return el("tr", {}, r.map(function (c, i) { return el(cls === "kv" && i === 0 ? "th" : "td", {}, [c]); }));
    })));
    return t;
  }
  function fill(box, title, content) {
    box.textContent = "";
    if (content) { box.appendChild(el("b", { text: title })); box.appendChild(content); }
  }
  function api(path) {
    // the key travels in the HttpOnly cookie; the API accepts it for reads
    return fetch("/api/v1" + path, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.json().then(function (body) { if (!r.ok) throw new Error(body.error || r.status); return body; }); });
  }
  window.ctloop = { el: el, table: table, api: api };

  // -- the run page: a step's details when its node is clicked ------------------------
  function stepPanel() {
    var data = document.getElementById("steps-data"), panel = document.getElementById("step-panel");
    if (!data || !panel) return;
    var steps = JSON.parse(data.textContent);
    function show(name) {
      var step = steps[name];
      if (!step) return;
      document.querySelectorAll("#dag g.node.selected").forEach(function (g) { g.classList.remove("selected"); });
      var node = document.querySelector('#dag g.node[data-step="' + CSS.escape(name) + '"]');
      if (node) node.classList.add("selected");
      panel.hidden = false;
      panel.dataset.step = name;
      panel.querySelector(".step-name").textContent = name;
      var badge = panel.querySelector(".step-status");
      badge.className = "badge step-status " + step.status; badge.textContent = step.status;
      var facts = panel.querySelector(".step-facts");
      facts.replaceWith(Object.assign(table(null, step.facts.map(function (f) { return [f[0], String(f[1])]; }), "kv"), { className: "kv step-facts" }));
      fill(panel.querySelector(".step-params"), "Parameters", step.params.length ? table(["parameter", "value"], step.params) : null);
      fill(panel.querySelector(".step-metrics"), "Metrics", step.metrics.length ? table(["metric", "value"], step.metrics) : null);
      fill(panel.querySelector(".step-error"), "Traceback", step.error ? el("pre", { "class": "log", text: step.error }) : null);
      var events = panel.querySelector(".step-events"), log = panel.querySelector(".step-log");
      events.textContent = "loading inputs and outputs…"; log.textContent = "";
      api("/executions/" + encodeURIComponent(step.id)).then(function (found) {
        var rows = found.events.map(function (e) {
          return [e.kind === "input" ? "in" : "out", e.name,
            el("a", { href: "/artifacts/" + encodeURIComponent(e.artifact_id), text: e.artifact_id.slice(0, 12) }),
            el("a", { href: "/lineage/" + encodeURIComponent(e.artifact_id), text: "lineage" })];
        });
        fill(events, "Inputs and outputs", rows.length ? table(["", "argument", "artifact", ""], rows) : el("p", { "class": "muted", text: " none" }));
      }).catch(function (err) { events.textContent = "could not read the step's events: " + err.message; });
      api("/executions/" + encodeURIComponent(step.id) + "/log?tail=40").then(function (found) {
        if (found.lines.length) {
          fill(log, "Log (last " + found.lines.length + " of " + found.total_lines + " lines)", el("pre", { "class": "log", text: found.lines.join("\n") }));
        }
        panel.dataset.loaded = "1";
      }).catch(function (err) { log.textContent = "could not read the step's log: " + err.message; });
    }
    function fromHash() {
      var m = /^#step-(.+)$/.exec(decodeURIComponent(location.hash));
      if (m) show(m[1]);
    }
    window.addEventListener("hashchange", fromHash);
    fromHash();
  }

  // -- running runs kept live: the runs table and the run page poll the API ---------
  // Every POLL_MS while the tab is visible (none while it is hidden, one at once when it
  // shows again): the table asks for its running runs (one request for all of them) and,
  // on the first page of the newest runs, for runs started after its newest row, with
  // the page's filters and conditions (one request); the run page asks for its run. A run
  // that is no longer running is read once more for its end; polling stops when nothing
  // on the page can change any more.
  var POLL_MS = 2000;
  function duration(run) {
    var s = (new Date(run.ended_at || Date.now()) - new Date(run.started_at)) / 1000;
    return s < 60 ? (s < 10 ? s.toPrecision(2) : s.toFixed(0)) + " s" : Math.floor(s / 60) + " min " + Math.floor(s % 60) + " s";
  }
  function setBadge(badge, status) { badge.className = "badge " + status; badge.textContent = status; }
  function poll(tick) {
    var timer = null, busy = false, over = false;
    function run() {
      if (busy || over || document.hidden) return;
      busy = true;
      tick().then(function (more) {
        busy = false;
        if (!more) stop("done");
      }, function () { busy = false; stop("failed"); });
    }
    function start() { if (!over && timer === null) timer = setInterval(run, POLL_MS); }
    function stop(why) {
      over = true;
      clearInterval(timer); timer = null;
      document.body.dataset.live = why;
      document.removeEventListener("visibilitychange", seen);
    }
    function seen() {
      if (document.hidden) { clearInterval(timer); timer = null; document.body.dataset.live = "paused"; return; }
      document.body.dataset.live = "polling";
      run(); start();
    }
    document.addEventListener("visibilitychange", seen);
    document.body.dataset.live = document.hidden ? "paused" : "polling";
    if (!document.hidden) start();
  }
  // the cells of the runs table as the server draws them (ctloop.server._ui._render)
  function twoDigits(v) { return v < 10 ? String(+v.toPrecision(2)) : v.toFixed(0); }
  function seconds(v) {
    if (v === null || v === undefined) return "";
    return v < 60 ? twoDigits(v) + " s" : Math.floor(v / 60) + " min " + Math.floor(v % 60) + " s";
  }
  function number(v) {
    if (v === null || v === undefined) return "";
    if (typeof v !== "number" || !isFinite(v)) return String(v);
    if (v === 0) return "0";
    var e = Math.floor(Math.log10(Math.abs(+v.toPrecision(4))));
    if (e < -4 || e >= 4) return v.toExponential(3).replace(/\.?0+e/, "e").replace(/e([+-])(\d)$/, function (m, sign, digit) { return "e" + sign + "0" + digit; });
    return String(+v.toPrecision(4));
  }
  function param(v) {
    if (v === null || v === undefined) return "";
    return typeof v === "string" ? v : pyJson(v);
  }
  function pyJson(v) {  // as Python's json.dumps writes it: ", " and ": " between items
    if (Array.isArray(v)) return "[" + v.map(pyJson).join(", ") + "]";
    if (v && typeof v === "object") {
      return "{" + Object.keys(v).map(function (k) { return JSON.stringify(k) + ": " + pyJson(v[k]); }).join(", ") + "}";
    }
    return JSON.stringify(v);
  }
  function runRow(run, metrics, params) {
    var short = run.id.slice(0, 8);
    var cells = [
      el("td", {}, [el("input", { type: "checkbox", name: "runs", value: run.id, "aria-label": "compare " + short })]),
      el("td", {}, [el("a", { href: "/runs/" + run.id }, [el("code", { text: short })])]),
      el("td", { text: run.pipeline }),
      el("td", {}, [el("span", { "class": "badge " + run.status, text: run.status })]),
      el("td", { text: run.trigger }),
      el("td", { text: run.started_at.slice(0, 19).replace("T", " ") }),
      el("td", { "class": "num duration", text: seconds(run.duration_s) })
    ];
    params.forEach(function (k) { cells.push(el("td", { text: param(run.params[k]) })); });
    metrics.forEach(function (k) { cells.push(el("td", { "class": "num", text: number(run.metrics[k]) })); });
    return el("tr", { "data-run": run.id, "data-status": run.status, "class": "new" }, cells);
  }
  function liveRuns() {
    var table = document.getElementById("runs");
    if (!table) return;
    var watchNew = table.dataset.watchNew !== undefined;
    var live = document.getElementById("live"), liveNew = document.getElementById("live-new");
    function runningRows() { return document.querySelectorAll('#runs tr[data-status="running"]'); }
    function showState() {
      if (live) live.hidden = !runningRows().length;
      if (liveNew) liveNew.hidden = !watchNew;
    }
    if (!watchNew && !runningRows().length) return;
    showState();
    var since = watchNew ? table.dataset.since : "", limit = watchNew ? +table.dataset.limit : 0;
    var metrics = watchNew && table.dataset.metrics ? table.dataset.metrics.split(",") : [];
    var params = watchNew && table.dataset.params ? table.dataset.params.split(",") : [];
    function newRuns() {
      var query = table.dataset.watchNew ? table.dataset.watchNew + "&" : "";
      query += "limit=" + limit + (since ? "&started_after=" + encodeURIComponent(since) : "");
      return api("/runs/search?" + query).then(function (found) {
        var body = table.tBodies[0], added = 0;
        found.items.slice().reverse().forEach(function (run) {  // oldest first, each on top
          if (body.querySelector('tr[data-run="' + CSS.escape(run.id) + '"]')) return;
          body.insertBefore(runRow(run, metrics, params), body.firstChild);
          added++;
          if (!since || run.started_at > since) since = run.started_at;
        });
        if (!added) return;
        body.querySelectorAll("tr:not([data-run])").forEach(function (row) { row.remove(); });  // "No runs match."
        var rows = body.querySelectorAll("tr[data-run]");
        for (var i = limit; i < rows.length; i++) rows[i].remove();  // the page keeps its size
        var count = document.getElementById("run-count");
        if (count && count.dataset.total !== undefined) {
          count.dataset.total = String(+count.dataset.total + added);
          count.textContent = (+count.dataset.total).toLocaleString("en-US") + " runs";
        }
        table.dataset.added = String(+(table.dataset.added || 0) + added);
      });
    }
    function running() {
      var rows = runningRows();
      if (!rows.length) return Promise.resolve();
      return api("/runs?status=running&limit=500").then(function (found) {
        var still = {};
        found.items.forEach(function (run) { still[run.id] = run; });
        var ended = [];
        rows.forEach(function (row) {
          var runningNow = still[row.dataset.run];
          if (runningNow) { row.querySelector(".duration").textContent = duration(runningNow); return; }
          ended.push(api("/runs/" + encodeURIComponent(row.dataset.run)).then(function (run) {
            row.dataset.status = run.status;
            setBadge(row.querySelector(".badge"), run.status);
            row.querySelector(".duration").textContent = duration(run);
          }));
        });
        return Promise.all(ended);
      });
    }
    poll(function () {
      return Promise.all([running(), watchNew ? newRuns() : null]).then(function () {
        showState();
        return watchNew || runningRows().length > 0;
      });
    });
  }
  function liveRun() {
    var head = document.getElementById("run-status"), data = document.getElementById("steps-data");
    if (!head || head.dataset.status !== "running" || !data) return;
    var steps = JSON.parse(data.textContent), id = head.dataset.run;
    poll(function () {
      return api("/runs/" + encodeURIComponent(id)).then(function (run) {
        var latest = {}, unknown = 0;
        run.executions.forEach(function (e) {
          var held = latest[e.step];
          if (!held || e.attempt >= held.attempt) latest[e.step] = e;
        });
        Object.keys(latest).forEach(function (name) {
          var e = latest[name], node = document.querySelector('#dag g.node[data-step="' + CSS.escape(name) + '"]');
          if (!node) { unknown++; return; }
          node.setAttribute("class", "node " + e.status + (node.classList.contains("selected") ? " selected" : ""));
          node.querySelector("text.muted").textContent = e.status;
          if (steps[name]) steps[name].status = e.status;
          var panel = document.getElementById("step-panel");
          if (panel && panel.dataset.step === name) setBadge(panel.querySelector(".step-status"), e.status);
        });
        head.dataset.status = run.status;
        setBadge(head.querySelector(".badge"), run.status);
        var note = document.getElementById("live-note");
        if (unknown || run.status !== "running") {
          note.hidden = false;
          note.querySelector(".what").textContent = run.status !== "running"
            ? "The run " + run.status + " (" + duration(run) + ")." : unknown + " new step(s) started.";
        }
        return run.status === "running";
      });
    });
  }

  // -- the compare page: a metric's curves of several runs overlaid, a colour per run -
  // Each chart reads each run's history of its metric from the API (downsampled there)
  // when it scrolls near the screen, a few requests at a time, so 20 runs of 50 curves
  // do not ask for everything at once.
  function overlaid() {
    var data = document.getElementById("curves-data");
    if (!data) return;
    var info = JSON.parse(data.textContent), queue = [], active = 0;
    function next() {
      while (active < 4 && queue.length) {
        active++;
        queue.shift()().then(function () { active--; next(); });
      }
    }
    function load(canvas) {
      var ids = canvas.dataset.runs.split(","), key = canvas.dataset.key;
      var state = canvas.parentNode.querySelector(".state");
      var found = ids.map(function () { return null; }), failed = [], left = ids.length, thinned = false;
      state.textContent = "; loading…";
      function finish() {
        var series = found.filter(function (s) { return s && s.points.length; });
        state.textContent = failed.length ? "; could not read " + failed.join(", ")
          : thinned ? "; downsampled to " + info.points + " points a run" : "";
        if (series.length) zoomable(canvas, series);
        canvas.dataset.ready = "1";
      }
      ids.forEach(function (id, i) {
        queue.push(function () {
          var path = "/runs/" + encodeURIComponent(id) + "/metrics/" + encodeURIComponent(key) + "?max_points=" + info.points;
          return api(path).then(function (history) {
            if (history.count > history.points.length) thinned = true;
            var points = history.points.map(function (p, j) { return [p.step === null ? j : p.step, p.value]; }).filter(valid);
            points.sort(function (a, b) { return a[0] - b[0]; });
            found[i] = { points: points, colour: info.runs[id].colour, label: id.slice(0, 8) };
          }).catch(function (err) { failed.push(id.slice(0, 8) + " (" + err.message + ")"); })
            .then(function () { if (--left === 0) finish(); });
        });
      });
      next();
    }
    var canvases = document.querySelectorAll("canvas.metric-chart.overlaid");
    if (!("IntersectionObserver" in window)) { canvases.forEach(load); return; }
    var near = new IntersectionObserver(function (entries) {
      entries.forEach(function (e) { if (e.isIntersecting) { near.unobserve(e.target); load(e.target); } });
    }, { rootMargin: "400px" });
    canvases.forEach(function (c) { near.observe(c); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("canvas.metric-chart:not(.overlaid)").forEach(chart);
    overlaid();
    stepPanel();
    liveRuns();
    liveRun();
  });
})();
