// callwatch live dashboard: polls the monitoring routes beside this page and draws them.
// No dependencies, no external requests. Data is only ever written with textContent.
"use strict";
(function () {
  const REFRESH_MS = 2000;
  const HISTORY_MS = 10 * 60 * 1000;
  const DEFAULT_BUDGET_MS = 800;
  const TOKEN_KEY = "callwatch.token";
  const HISTORY_KEY = "callwatch.latency";
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

  async function api(path) {
    const headers = token ? { Authorization: "Bearer " + token } : {};
    const response = await fetch(new URL(path, location.href), { headers, cache: "no-store" });
    if (response.status === 401) throw new Unauthorized();
    if (!response.ok && response.status !== 503) throw new Error("HTTP " + response.status);
    return response.json();
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
  function level(value, limits) {
    if (!limits || !num(value)) return "ok";
    if (num(limits.critical) && value >= limits.critical) return "critical";
    if (num(limits.warning) && value >= limits.warning) return "warning";
    return "ok";
  }

  // --- latency history (kept per tab so a reload keeps the chart) ---------------------------
  let samples = [];
  try { samples = JSON.parse(sessionStorage.getItem(HISTORY_KEY)) || []; } catch (e) { samples = []; }
  function remember(rt) {
    const now = Date.now();
    samples.push({ t: now, p50: rt.p50, p95: rt.p95, p99: rt.p99 });
    samples = samples.filter((s) => now - s.t <= HISTORY_MS);
    try { sessionStorage.setItem(HISTORY_KEY, JSON.stringify(samples)); } catch (e) { /* full */ }
  }

  function niceStep(max) {
    const raw = max / 4, mag = Math.pow(10, Math.floor(Math.log10(raw)));
    return [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw);
  }

  function drawLatency(budget) {
    const chart = $("latency-chart");
    const w = chart.clientWidth || 800, h = chart.clientHeight || 260;
    const pad = { l: 48, r: 14, t: 12, b: 24 };
    chart.setAttribute("viewBox", `0 0 ${w} ${h}`);
    chart.replaceChildren();
    const peak = Math.max(budget * 1.25, ...samples.flatMap((s) => [s.p99, s.p95, s.p50].filter(num)));
    const step = niceStep(peak), top = Math.ceil(peak / step) * step;
    // The window grows with the history kept: one minute at first, ten at most.
    const now = Date.now();
    const span = Math.min(HISTORY_MS, Math.max(60000, samples.length ? now - samples[0].t : 0));
    const x = (t) => pad.l + ((t - (now - span)) / span) * (w - pad.l - pad.r);
    const tick = span > 180000 ? 120000 : span > 90000 ? 30000 : 15000;
    const y = (v) => h - pad.b - (v / top) * (h - pad.t - pad.b);
    for (let v = 0; v <= top + 1e-9; v += step) {
      chart.append(svg("line", { x1: pad.l, x2: w - pad.r, y1: y(v), y2: y(v), class: "grid" }));
      const label = v >= 1000 ? `${+(v / 1000).toFixed(2)} s` : `${v} ms`;
      chart.append(svg("text", { x: pad.l - 8, y: y(v) + 4, class: "axis", "text-anchor": "end" }, label));
    }
    for (let ago = 0; ago <= span; ago += tick) {
      const label = ago === 0 ? "now" : ago % 60000 ? `−${ago / 1000} s` : `−${ago / 60000} min`;
      const anchor = ago === 0 ? "end" : "middle";
      chart.append(svg("text", { x: x(now - ago), y: h - 6, class: "axis", "text-anchor": anchor }, label));
    }
    chart.append(svg("rect", { x: pad.l, y: pad.t, width: w - pad.l - pad.r, height: Math.max(0, y(budget) - pad.t), class: "over-budget" }));
    chart.append(svg("line", { x1: pad.l, x2: w - pad.r, y1: y(budget), y2: y(budget), class: "budget" }));
    chart.append(svg("text", { x: pad.l + 8, y: y(budget) - 6, class: "budget-label" }, `${format(budget, "ms")} voice budget`));
    for (const key of ["p50", "p95", "p99"]) {
      const pts = samples.filter((s) => num(s[key])).map((s) => `${x(s.t).toFixed(1)},${y(s[key]).toFixed(1)}`);
      if (pts.length > 1) chart.append(svg("polyline", { points: pts.join(" "), class: "line " + key }));
      if (pts.length) {
        const [cx, cy] = pts[pts.length - 1].split(",");
        chart.append(svg("circle", { cx, cy, r: 3.5, class: "dot " + key }));
      }
    }
  }

  // --- panels -------------------------------------------------------------------------------
  function bars(container, rows, scale) {
    container.replaceChildren();
    if (!rows.length) { container.append(node("p", { class: "empty" }, "nothing yet")); return; }
    for (const row of rows) {
      const track = node("div", { class: "track" });
      for (const seg of row.segments) {
        const el = node("span", { class: seg.cls });
        el.style.width = Math.min(100, (100 * seg.value) / scale) + "%";
        track.append(el);
      }
      const line = node("div", { class: "bar-row" + (row.stacked ? " stacked" : "") });
      line.append(node("div", { class: "bar-name", title: row.name }, row.name), row.label, track);
      container.append(line);
    }
  }

  // Voice pipeline order first (speech-to-text, model, text-to-speech), then the rest by name.
  const STAGE_ORDER = [/stt|transcri/i, /llm|generat/i, /tts|synthes/i];
  const stageRank = (name) => {
    const rank = STAGE_ORDER.findIndex((re) => re.test(name));
    return rank < 0 ? STAGE_ORDER.length : rank;
  };

  function drawStages(performance) {
    const ops = Object.entries(performance || {})
      .sort(([a], [b]) => stageRank(a) - stageRank(b) || a.localeCompare(b))
      .slice(0, 12);
    const scale = Math.max(1, ...ops.map(([, s]) => s.p99_ms || 0));
    bars($("stages"), ops.map(([name, s]) => {
      const label = node("div", { class: "bar-value" });
      label.append(
        node("b", metricAttrs(["performance", name, "p50_ms"], "ms")),
        document.createTextNode(" · "),
        node("span", metricAttrs(["performance", name, "p95_ms"], "ms")),
        document.createTextNode(" · "),
        node("span", metricAttrs(["performance", name, "p99_ms"], "ms")),
      );
      return {
        name, label, stacked: true,
        segments: [
          { cls: "seg p99", value: s.p99_ms }, { cls: "seg p95", value: s.p95_ms }, { cls: "seg p50", value: s.p50_ms },
        ],
      };
    }), scale);
  }

  function drawErrorTypes(errors) {
    const types = Object.entries((errors && errors.errors_by_type) || {}).sort((a, b) => b[1] - a[1]).slice(0, 10);
    const scale = Math.max(1, ...types.map(([, n]) => n));
    bars($("error-types"), types.map(([name, n]) => ({
      name,
      label: node("div", Object.assign({ class: "bar-value" }, metricAttrs(["errors", "errors_by_type", name]))),
      segments: [{ cls: "seg err", value: n }],
    })), scale);
  }

  function drawRecentErrors(errors) {
    const body = $("recent-errors");
    body.replaceChildren();
    const recent = ((errors && errors.recent_errors) || []).slice(0, 8);
    if (!recent.length) {
      const row = node("tr"); row.append(node("td", { colspan: 4, class: "empty" }, "no errors recorded"));
      body.append(row);
    }
    for (const e of recent) {
      const row = node("tr");
      row.append(node("td", {}, clock(e.timestamp)), node("td", { class: "etype" }, e.error_type || ""),
        node("td", { class: "mono" }, e.call_id || "—"), node("td", { class: "msg" }, e.message || ""));
      body.append(row);
    }
  }

  function drawGauges(system, limits) {
    for (const gauge of document.querySelectorAll("[data-gauge]")) {
      const key = gauge.dataset.gauge, value = system ? system[key] : undefined;
      const pic = gauge.querySelector("svg");
      pic.replaceChildren();
      const arc = (frac) => {
        const a = Math.PI * (1 - frac), r = 48;
        return `M 12 62 A ${r} ${r} 0 0 1 ${(60 + r * Math.cos(a)).toFixed(2)} ${(62 - r * Math.sin(a)).toFixed(2)}`;
      };
      pic.append(svg("path", { d: arc(1), class: "gauge-track" }));
      if (num(value)) {
        const frac = Math.max(0.001, Math.min(1, value / 100));
        pic.append(svg("path", { d: arc(frac), class: "gauge-fill " + level(value, limits[key]) }));
      }
    }
  }

  function alertItem(a, past) {
    const state = past && a.status === "resolved" ? "resolved" : String(a.severity || "info");
    const li = node("li", { class: "alert " + state });
    li.append(node("span", { class: "sev" }, state));
    const text = node("div", { class: "alert-text" });
    text.append(node("b", {}, a.title || a.metric || "alert"));
    const detail = [a.message, num(a.value) ? `value ${a.value}` : "", a.threshold != null ? `threshold ${a.threshold}` : ""];
    const summary = detail.filter(Boolean).join(" · ");
    text.append(node("small", { title: summary }, summary));
    li.append(text, node("time", {}, clock(past ? a.ends_at || a.timestamp : a.starts_at || a.timestamp)));
    return li;
  }

  function drawAlerts(alerts) {
    const active = alerts.active || [];
    const list = $("alerts");
    list.replaceChildren(...active.map((a) => alertItem(a, false)));
    if (!active.length) list.append(node("li", { class: "all-clear" }, "All clear — no alerts firing"));
    const keys = new Set(active.map((a) => a.fingerprint || a.title));
    const past = (alerts.history || []).filter((a) => !keys.has(a.fingerprint || a.title)).slice(0, 4);
    $("alert-history").replaceChildren(...past.map((a) => alertItem(a, true)));
    if (!past.length) $("alert-history").append(node("li", { class: "empty" }, "nothing in history"));
  }

  // --- the loop -----------------------------------------------------------------------------
  function budgetOf(limits) {
    const b = limits && (limits.response_budget_ms || limits.voice_budget_ms);
    if (b && num(b.critical)) return b.critical;
    return num(b) ? b : DEFAULT_BUDGET_MS;
  }

  function render(metrics, alerts, health) {
    const limits = (alerts && alerts.thresholds) || {};
    const calls = metrics.calls || {};
    const finished = (calls.successful_calls || 0) + (calls.failed_calls || 0);
    const budget = budgetOf(limits);
    lastBudget = budget;
    const data = Object.assign({}, metrics, {
      thresholds: limits,
      alerts: { active_count: (alerts.active || []).length },
      derived: {
        success_rate: finished ? (100 * calls.successful_calls) / finished : undefined,
        budget_ms: budget,
      },
    });
    remember(calls.response_time_ms || {});
    drawStages(metrics.performance);
    drawErrorTypes(metrics.errors);
    fillMetrics(document, data);
    drawLatency(budget);
    drawRecentErrors(metrics.errors);
    drawGauges(metrics.system, limits);
    drawAlerts(alerts);
    const cap = dig(limits, "active_calls.critical");
    $("capacity-fill").style.width = num(cap) && cap > 0 ? Math.min(100, (100 * (calls.active_calls || 0)) / cap) + "%" : "0";
    $("capacity-fill").className = level(calls.active_calls, limits.active_calls);
    const state = String((health && health.status) || "unknown");
    $("status").dataset.status = state;
    $("status").textContent = state;
    document.body.dataset.health = state;
    $("updated").textContent = clock(Date.now());
    document.body.dataset.ready = "true";
  }

  let timer = null;
  let lastBudget = DEFAULT_BUDGET_MS;
  let running = false;
  async function refresh() {
    if (running) return; // one loop only, whatever triggers a refresh
    clearTimeout(timer);
    if (document.hidden) { // a forgotten background tab costs the service nothing
      timer = setTimeout(refresh, REFRESH_MS);
      return;
    }
    running = true;
    try {
      const [metrics, alerts, health] = await Promise.all([api("metrics"), api("alerts?limit=20"), api("health/detailed")]);
      $("auth").hidden = true;
      $("offline").hidden = true;
      render(metrics, alerts, health);
    } catch (error) {
      if (error instanceof Unauthorized) {
        sessionStorage.removeItem(TOKEN_KEY);
        token = null;
        $("auth").hidden = false;
        $("status").dataset.status = "locked";
        $("status").textContent = "token needed";
        return; // wait for the form
      }
      console.error("callwatch dashboard:", error);
      $("offline").hidden = false;
    } finally {
      running = false;
    }
    timer = setTimeout(refresh, REFRESH_MS);
  }

  $("auth").addEventListener("submit", (event) => {
    event.preventDefault();
    token = $("token").value.trim();
    $("token").value = "";
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    refresh();
  });
  window.addEventListener("hashchange", () => { token = takeToken(); refresh(); });
  document.addEventListener("visibilitychange", () => { if (!document.hidden) refresh(); });
  window.addEventListener("resize", () => drawLatency(lastBudget));
  refresh();
})();
