// callwatch pages: the token, requests to the routes beside the page, formatting, DOM and a
// small SVG chart renderer. No dependencies, no external requests; data only via textContent.
"use strict";
window.callwatch = (function () {
  const TOKEN_KEY = "callwatch.token";
  const SVG = "http://www.w3.org/2000/svg";
  const $ = (id) => document.getElementById(id);

  // The token arrives in the URL fragment (never sent to any server), is kept for this tab
  // only, and is wiped from the address bar at once.
  function takeToken() {
    const match = /(?:^#|&)token=([^&]*)/.exec(location.hash);
    if (match) {
      let value = match[1];
      try { value = decodeURIComponent(value); } catch (e) { /* use it as typed */ }
      sessionStorage.setItem(TOKEN_KEY, value);
      history.replaceState(null, "", location.pathname + location.search);
    }
    return sessionStorage.getItem(TOKEN_KEY);
  }
  let token = takeToken();

  class Unauthorized extends Error {}

  // ``path`` is relative to the monitoring prefix, whichever page asks.
  const base = new URL(location.pathname.replace(/\/dashboard(\/.*)?$/, "/"), location.href);
  async function api(path, okStatuses) {
    const headers = token ? { Authorization: "Bearer " + token } : {};
    const response = await fetch(new URL(path, base), { headers, cache: "no-store" });
    if (response.status === 401) throw new Unauthorized();
    if (!response.ok && !(okStatuses || [503]).includes(response.status)) throw new Error("HTTP " + response.status);
    return response.json();
  }

  // The token form: shown on 401, hidden once a request succeeds.
  function guard(onToken) {
    $("auth").addEventListener("submit", (event) => {
      event.preventDefault();
      token = $("token").value.trim();
      $("token").value = "";
      if (token) sessionStorage.setItem(TOKEN_KEY, token);
      onToken();
    });
    window.addEventListener("hashchange", () => { token = takeToken(); onToken(); });
  }
  function locked() {
    sessionStorage.removeItem(TOKEN_KEY);
    token = null;
    $("auth").hidden = false;
    $("status").dataset.status = "locked";
    $("status").textContent = "token needed";
  }

  // --- formatting -------------------------------------------------------------------------
  const num = (v) => typeof v === "number" && isFinite(v);
  function format(value, kind) {
    if (!num(value)) return "—";
    switch (kind) {
      case "ms":
        if (value >= 10000) return (value / 1000).toFixed(1) + " s";
        return (value < 10 ? value.toFixed(1) : Math.round(value)) + " ms";
      case "sec": return value.toFixed(value < 10 ? 1 : 0) + " s";
      case "percent": return value.toFixed(1) + "%";
      case "rate": return value.toFixed(value < 100 ? 1 : 0);
      case "mb": return value >= 1024 ? (value / 1024).toFixed(1) + " GB" : Math.round(value) + " MB";
      case "gb": return value.toFixed(1) + " GB";
      case "usd": return "$" + value.toFixed(value < 1 ? 4 : 2);
      default: return Number.isInteger(value) ? value.toLocaleString("en-US") : value.toFixed(2);
    }
  }
  function dig(data, path) {
    const keys = typeof path === "string" ? path.split(".") : path;
    return keys.reduce((node, key) => (node == null ? undefined : node[key]), data);
  }
  // Every element naming a metric shows it formatted and keeps the raw value in data-value.
  // Rows built from names (operations, error types) carry their exact path in data-path,
  // since a name may itself contain a dot.
  function fillMetrics(root, data) {
    for (const el of root.querySelectorAll("[data-metric]")) {
      const path = el.dataset.path ? JSON.parse(el.dataset.path) : el.dataset.metric.split(".");
      const value = dig(data, path);
      el.textContent = format(value, el.dataset.format);
      if (num(value)) el.dataset.value = String(value); else delete el.dataset.value;
    }
  }
  function node(tag, attrs, text) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
    if (text !== undefined) el.textContent = text;
    return el;
  }
  function metricAttrs(path, kind) {
    const attrs = { "data-metric": path.join("."), "data-path": JSON.stringify(path) };
    if (kind) attrs["data-format"] = kind;
    return attrs;
  }
  function svg(tag, attrs, text) {
    const el = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
    if (text !== undefined) el.textContent = text;
    return el;
  }
  const clock = (ts) => {
    const d = new Date(ts);
    return isNaN(d) ? String(ts || "") : d.toLocaleTimeString("en-GB", { hour12: false });
  };
  // A call id as a link to its page (the id is text, never markup).
  function callLink(id) {
    return node("a", { class: "call-link mono", href: base.pathname + "dashboard/call?id=" + encodeURIComponent(id) }, id);
  }

  // --- charts -----------------------------------------------------------------------------
  function niceStep(max) {
    const raw = Math.max(max, 1e-9) / 4, mag = Math.pow(10, Math.floor(Math.log10(raw)));
    return [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw);
  }
  function timeLabel(t, span) {
    const d = new Date(t);
    const hm = d.toLocaleTimeString("en-GB", { hour: "2-digit", minute: "2-digit", hour12: false });
    return span > 36 * 3600e3 ? d.toLocaleDateString("en-GB", { weekday: "short" }) + " " + hm : hm;
  }

  // One chart over time: ``series`` of {key, cls, label, bars?} read from ``points`` (each
  // with ``t`` in ms), from ``from`` to ``to``; a dashed ``budget`` line; vertical ``marks``
  // ({t, cls, title}) for alerts. Gaps (null) break lines. Width follows the element.
  function timeChart(el, opts) {
    const w = el.clientWidth || 600, h = el.clientHeight || 180;
    const pad = { l: 52, r: 12, t: 10, b: 22 };
    el.setAttribute("viewBox", `0 0 ${w} ${h}`);
    el.replaceChildren();
    const { points, series, from, to } = opts;
    const values = points.flatMap((p) => series.map((s) => s.get(p)).filter(num));
    const peak = Math.max(opts.min || 1, opts.budget ? opts.budget * 1.2 : 0, ...values);
    const step = niceStep(peak), top = Math.ceil(peak / step) * step;
    const span = Math.max(1, to - from);
    const x = (t) => pad.l + ((t - from) / span) * (w - pad.l - pad.r);
    const y = (v) => h - pad.b - (v / top) * (h - pad.t - pad.b);
    for (let v = 0; v <= top + 1e-9; v += step) {
      el.append(svg("line", { x1: pad.l, x2: w - pad.r, y1: y(v), y2: y(v), class: "grid" }));
      el.append(svg("text", { x: pad.l - 6, y: y(v) + 4, class: "axis", "text-anchor": "end" }, opts.axis ? opts.axis(v) : format(v)));
    }
    const ticks = 6;
    for (let i = 0; i <= ticks; i++) {
      const t = from + (span * i) / ticks;
      const anchor = i === 0 ? "start" : i === ticks ? "end" : "middle";
      el.append(svg("text", { x: x(t), y: h - 5, class: "axis", "text-anchor": anchor }, timeLabel(t, span)));
    }
    if (opts.budget) {
      el.append(svg("rect", { x: pad.l, y: pad.t, width: w - pad.l - pad.r, height: Math.max(0, y(opts.budget) - pad.t), class: "over-budget" }));
      el.append(svg("line", { x1: pad.l, x2: w - pad.r, y1: y(opts.budget), y2: y(opts.budget), class: "budget" }));
      el.append(svg("text", { x: pad.l + 6, y: y(opts.budget) - 5, class: "budget-label" }, `${format(opts.budget, "ms")} budget`));
    }
    const slot = Math.max(2, ((w - pad.l - pad.r) * (opts.stepMs || 60000)) / span - 1);
    for (const s of series) {
      const shown = points.filter((p) => num(s.get(p)));
      if (s.bars) {
        for (const p of shown) {
          const v = s.get(p);
          el.append(svg("rect", { x: x(p.t), y: y(v), width: slot, height: Math.max(0, y(0) - y(v)), class: "col " + s.cls }));
        }
        continue;
      }
      let run = [];
      const flush = () => {
        if (run.length > 1) el.append(svg("polyline", { points: run.join(" "), class: "line " + s.cls }));
        if (run.length === 1) el.append(svg("circle", { cx: run[0].split(",")[0], cy: run[0].split(",")[1], r: 2.5, class: "dot " + s.cls }));
        run = [];
      };
      for (const p of points) {
        const v = s.get(p);
        if (num(v)) run.push(`${x(p.t).toFixed(1)},${y(v).toFixed(1)}`); else flush();
      }
      flush();
    }
    for (const m of opts.marks || []) {
      if (m.t < from || m.t > to) continue;
      const line = svg("line", { x1: x(m.t), x2: x(m.t), y1: pad.t, y2: h - pad.b, class: "mark " + m.cls });
      line.append(svg("title", {}, m.title));
      el.append(line);
    }
    el.dataset.points = String(points.length);
  }

  return { $, api, guard, locked, Unauthorized, num, format, dig, fillMetrics, node, metricAttrs, svg, clock, callLink, timeChart };
})();
