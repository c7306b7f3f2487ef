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

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("canvas.metric-chart").forEach(chart);
  });
})();
