// ctloop web UI: the lineage graph. The server names the first nodes; each click on a
// node's ◀ or ▶ fetches one hop from the API (an artifact's writers or readers, an
// execution's inputs or outputs) and the graph is laid out again in layers: a node sits
// one column left of what it fed, one right of what it was made from.
"use strict";
(function () {
  var W = 170, H = 44, GX = 60, GY = 14, M = 24, PAGE = 50;
  var nodes = {}, order = [], edges = {}, columns = {}, svg, detail, statusLine, busy = 0;
  var executions = {}, artifacts = {}, starting = true;

  function api(path) { return window.ctloop.api(path); }
  function key(kind, id) { return kind + ":" + id; }

  // a node (once, in the column it was first seen in), and its edge to `from`: the new
  // node feeds `from` when it was found upstream of it
  function add(spec, column, from, up) {
    var k = key(spec.kind, spec.id), node = nodes[k];
    if (!node) {
      node = nodes[k] = Object.assign({ key: k, column: column, up: false, down: false }, spec);
      (columns[column] = columns[column] || []).push(node);
      order.push(node);
    }
    if (from) edges[up ? k + ">" + from.key : from.key + ">" + k] = true;
    return node;
  }

  function execution(id) {
    if (!executions[id]) executions[id] = api("/executions/" + encodeURIComponent(id));
    return executions[id];
  }
  function artifact(id) {
    if (!artifacts[id]) artifacts[id] = api("/artifacts/" + encodeURIComponent(id));
    return artifacts[id];
  }
  function executionSpec(e) {
    return { kind: "execution", id: e.id, label: e.step, sub: e.status, status: e.status, run: e.run_id };
  }
  function artifactSpec(a, name) {
    return { kind: "artifact", id: a.id, label: name || a.type, sub: a.type + " " + a.id.slice(0, 8) };
  }

  function track(promise) {
    busy += 1; status();
    return promise.catch(function (err) { statusLine.textContent = "could not read the lineage: " + err.message; })
      .then(function () { busy -= 1; status(); });
  }
  function status() {
    if (busy || starting) { statusLine.textContent = "loading…"; svg.removeAttribute("data-ready"); return; }
    statusLine.textContent = order.length + " nodes shown";
    svg.setAttribute("data-ready", String(order.length));
  }

  // one hop from node; `up` is true for what it was made from
  function expand(node, up) {
    if (up ? node.up : node.down) return Promise.resolve();
    if (up) node.up = true; else node.down = true;
    var column = node.column + (up ? -1 : 1);
    if (node.kind === "execution") {
      return track(execution(node.id).then(function (found) {
        var wanted = found.events.filter(function (e) { return (e.kind === "input") === up; });
        return Promise.all(wanted.map(function (e) { return artifact(e.artifact_id); })).then(function (found) {
          found.forEach(function (a, i) { add(artifactSpec(a, wanted[i].name), column, node, up); });
        });
      }).then(draw));
    }
    return track(page(node, up, column, null));
  }

  function page(node, up, column, cursor) {
    var path = "/artifacts/" + encodeURIComponent(node.id) + "/lineage?direction=" + (up ? "upstream" : "downstream") +
      "&limit=" + PAGE + (cursor ? "&cursor=" + encodeURIComponent(cursor) : "");
    return api(path).then(function (found) {
      return Promise.all(found.items.map(function (e) { return execution(e.execution_id); })).then(function (xs) {
        xs.forEach(function (x) { add(executionSpec(x), column, node, up); });
        if (found.next_cursor) {
          add({ kind: "more", id: node.id + (up ? "<" : ">") + found.next_cursor, label: "more…", sub: "next " + PAGE,
                more: { node: node.key, up: up, cursor: found.next_cursor } }, column, node, up);
        }
      });
    }).then(draw);
  }

  function more(node) {
    var spec = node.more, owner = nodes[spec.node];
    remove(node);
    track(page(owner, spec.up, node.column, spec.cursor));
  }
  function remove(node) {
    delete nodes[node.key];
    order.splice(order.indexOf(node), 1);
    columns[node.column].splice(columns[node.column].indexOf(node), 1);
    Object.keys(edges).forEach(function (e) { if (e.split(">").indexOf(node.key) >= 0) delete edges[e]; });
  }

  function place() {
    var cols = Object.keys(columns).map(Number), low = Math.min.apply(null, cols), tallest = 0;
    cols.forEach(function (c) {
      columns[c].forEach(function (n, i) { n.x = M + (c - low) * (W + GX); n.y = M + i * (H + GY); });
      tallest = Math.max(tallest, columns[c].length);
    });
    return { width: 2 * M + (Math.max.apply(null, cols) - low + 1) * (W + GX) - GX, height: 2 * M + tallest * (H + GY) - GY };
  }

  var NS = "http://www.w3.org/2000/svg";
  function s(tag, attrs, text) {
    var e = document.createElementNS(NS, tag);
    Object.keys(attrs).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function cut(text, n) { text = String(text); return text.length > n ? text.slice(0, n - 1) + "…" : text; }

  function draw() {
    var size = place();
    svg.textContent = "";
    svg.setAttribute("width", size.width); svg.setAttribute("height", size.height);
    svg.setAttribute("viewBox", "0 0 " + size.width + " " + size.height);
    Object.keys(edges).forEach(function (e) {
      var ends = e.split(">"), a = nodes[ends[0]], b = nodes[ends[1]];
      if (!a || !b) return;
      var x1 = a.x + W, y1 = a.y + H / 2, x2 = b.x, y2 = b.y + H / 2, bend = Math.max(GX / 2, (x2 - x1) / 2);
      svg.appendChild(s("path", { d: "M" + x1 + "," + y1 + " C" + (x1 + bend) + "," + y1 + " " + (x2 - bend) + "," + y2 + " " + x2 + "," + y2 }));
    });
    order.forEach(function (n) {
      var cls = n.kind === "more" ? "more" : "node " + n.kind + " " + (n.status || "") + (n.root ? " root" : "") + (selected === n.key ? " selected" : "");
      var g = s("g", { "class": cls, "data-kind": n.kind, "data-id": n.id, "data-label": n.label });
      g.appendChild(s("rect", { x: n.x, y: n.y, width: W, height: H, rx: n.kind === "artifact" ? 14 : 6 }));
      g.appendChild(s("text", { x: n.x + 14, y: n.y + 18 }, cut(n.label, 22)));
      g.appendChild(s("text", { x: n.x + 14, y: n.y + 34, "class": "muted" }, cut(n.sub || "", 24)));
      g.addEventListener("click", function () { if (n.kind === "more") more(n); else select(n); });
      svg.appendChild(g);
      if (n.kind !== "more") {
        button(n, true, n.x, n.y + H / 2);
        button(n, false, n.x + W, n.y + H / 2);
      }
    });
  }
  function button(n, up, x, y) {
    var done = up ? n.up : n.down;
    var c = s("circle", { cx: x, cy: y, r: 8, "class": "expand" + (done ? " done" : ""), "data-expand": up ? "up" : "down",
      "data-for": n.id, role: "button", "aria-label": (up ? "made from: " : "made into: ") + n.label });
    c.addEventListener("click", function (e) { e.stopPropagation(); expand(n, up); });
    svg.appendChild(c);
    svg.appendChild(s("text", { x: x - 3.5, y: y + 3.5, "class": "expand" }, up ? "◀" : "▶"));
  }

  var selected = null;
  function select(n) {
    selected = n.key; draw();
    var el = window.ctloop.el, rows = [["kind", n.kind], ["id", n.id]];
    detail.textContent = "";
    detail.appendChild(el("h3", { text: n.label }));
    var links = [];
    if (n.kind === "artifact") {
      links.push(el("a", { href: "/artifacts/" + encodeURIComponent(n.id), text: "open the artifact" }));
      artifact(n.id).then(function (a) {
        detail.appendChild(window.ctloop.table(null, [["type", a.type], ["size", String(a.size)], ["created", a.created_at.slice(0, 19).replace("T", " ")]], "kv"));
      });
    } else {
      links.push(el("a", { href: "/runs/" + encodeURIComponent(n.run) + "#step-" + encodeURIComponent(n.label), text: "open the step in its run" }));
      rows.push(["status", n.status], ["run", n.run]);
    }
    detail.appendChild(window.ctloop.table(null, rows, "kv"));
    links.push(el("a", { href: "/lineage/" + encodeURIComponent(n.kind === "artifact" ? n.id : n.run), text: "start the graph here" }));
    links.forEach(function (a) { detail.appendChild(el("p", {}, [a])); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    svg = document.getElementById("lineage");
    if (!svg) return;
    detail = document.getElementById("lineage-detail");
    statusLine = document.getElementById("lineage-status");
    JSON.parse(document.getElementById("lineage-roots").textContent).forEach(function (spec) {
      add(Object.assign({ root: true }, spec), 0, null, false);
    });
    draw();
    // one hop each way from the start, so the page opens on something to read
    order.slice().reduce(function (done, n) {
      return done.then(function () { return expand(n, true); }).then(function () { return expand(n, false); });
    }, Promise.resolve()).then(function () { starting = false; status(); });
    status();
  });
})();
