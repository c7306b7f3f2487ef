// ctloop web UI: paints the metric charts (canvas line charts: drag to zoom, double-click
// to reset). No library, no network: the points come in the canvas's data-points.
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

  function paint(canvas, points, view) {
    var ctx = canvas.getContext("2d"), w = canvas.width, h = canvas.height;
    var shown = points.filter(function (p) { return p[0] >= view[0] && p[0] <= view[1]; });
    if (!shown.length) shown = points;
    var ys = shown.map(function (p) { return p[1]; });
    var lowY = Math.min.apply(null, ys), highY = Math.max.apply(null, ys);
    if (lowY === highY) { lowY -= 0.5 * (Math.abs(lowY) || 1); highY += 0.5 * (Math.abs(highY) || 1); }
    var x = function (v) { return PAD.left + (v - view[0]) / ((view[1] - view[0]) || 1) * (w - PAD.left - PAD.right); };
    var y = function (v) { return h - PAD.bottom - (v - lowY) / (highY - lowY) * (h - PAD.top - PAD.bottom); };
    ctx.clearRect(0, 0, w, h);
    ctx.fillStyle = "#ffffff"; ctx.fillRect(0, 0, w, h);
    ctx.font = "11px system-ui, sans-serif"; ctx.fillStyle = "#374151"; ctx.strokeStyle = "#e5e7eb";
    ticks(lowY, highY, 4).forEach(function (t) {
      ctx.beginPath(); ctx.moveTo(PAD.left, y(t)); ctx.lineTo(w - PAD.right, y(t)); ctx.stroke();
      ctx.textAlign = "right"; ctx.fillText(label(t), PAD.left - 6, y(t) + 4);
    });
    ticks(view[0], view[1], 6).forEach(function (t) {
      ctx.textAlign = "center"; ctx.fillText(label(t), x(t), h - 8);
    });
    ctx.strokeStyle = "#1f6fd1"; ctx.lineWidth = 2; ctx.beginPath();
    shown.forEach(function (p, i) { if (i) ctx.lineTo(x(p[0]), y(p[1])); else ctx.moveTo(x(p[0]), y(p[1])); });
    ctx.stroke();
    ctx.fillStyle = "#1f6fd1";
    if (shown.length < 60) shown.forEach(function (p) { ctx.fillRect(x(p[0]) - 2, y(p[1]) - 2, 4, 4); });
    canvas.dataset.painted = String(shown.length);
    return function (px) { return view[0] + (px - PAD.left) / (w - PAD.left - PAD.right) * (view[1] - view[0]); };
  }

  function chart(canvas) {
    var points = JSON.parse(canvas.dataset.points || "[]").filter(function (p) {
      return typeof p[0] === "number" && typeof p[1] === "number" && isFinite(p[1]);
    });
    if (!points.length) return;
    var full = [points[0][0], points[points.length - 1][0]];
    if (full[0] === full[1]) full = [full[0] - 1, full[1] + 1];
    var view = full.slice(), toX = paint(canvas, points, view), start = null;
    canvas.addEventListener("mousedown", function (e) { start = e.offsetX; });
    canvas.addEventListener("mouseup", function (e) {
      if (start !== null && Math.abs(e.offsetX - start) > 4) {
        var a = toX(Math.min(start, e.offsetX)), b = toX(Math.max(start, e.offsetX));
        view = [a, b]; toX = paint(canvas, points, view);
      }
      start = null;
    });
    canvas.addEventListener("dblclick", function () { view = full.slice(); toX = paint(canvas, points, view); });
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

  // -- the runs table: the status and duration of running runs, kept live ------------
  function liveRuns() {
    var rows = document.querySelectorAll('#runs tr[data-status="running"]');
    if (!rows.length) return;
    var timer = setInterval(function () {
      var left = document.querySelectorAll('#runs tr[data-status="running"]');
      if (!left.length) { clearInterval(timer); return; }
      left.forEach(function (row) {
        api("/runs/" + encodeURIComponent(row.dataset.run)).then(function (run) {
          if (run.status === "running") return;
          row.dataset.status = run.status;
          var badge = row.querySelector(".badge");
          badge.className = "badge " + run.status; badge.textContent = run.status;
          if (run.ended_at) {
            var s = (new Date(run.ended_at) - new Date(run.started_at)) / 1000;
            row.querySelector(".duration").textContent = s < 60 ? (s < 10 ? s.toPrecision(2) : s.toFixed(0)) + " s" : Math.floor(s / 60) + " min " + Math.floor(s % 60) + " s";
          }
        }).catch(function () { clearInterval(timer); });
      });
    }, 3000);
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("canvas.metric-chart").forEach(chart);
    stepPanel();
    liveRuns();
  });
})();
