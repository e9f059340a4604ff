// callwatch live dashboard: polls the monitoring routes beside this page and draws them;
// the charts over time come from /monitoring/history, kept on disk (or in Prometheus).
"use strict";
(function () {
  const cw = window.callwatch;
  const { $, node, num, format } = cw;
  const REFRESH_MS = 2000;
  const HISTORY_REFRESH_MS = 30000;
  const DEFAULT_BUDGET_MS = 800;
  const MINUTE_MS = 60000;
  const RANGE_KEY = "callwatch.range";
  const LISTED = 10;
  const RANGE_NAMES = { 15: "15 min", 60: "1 h", 360: "6 h", 1440: "24 h", 10080: "7 d" };
  // At most a few hundred points per chart, whatever the range.
  const stepFor = (minutes) => (minutes <= 360 ? 1 : minutes <= 1440 ? 5 : 30);

  let rangeMinutes = Number(sessionStorage.getItem(RANGE_KEY)) || 60;
  if (!RANGE_NAMES[rangeMinutes]) rangeMinutes = 60;

  function level(value, limits) {
    if (!limits || !num(value)) return "ok";
    if (num(limits.critical) && value >= limits.critical) return "critical";
    if (num(limits.warning) && value >= limits.warning) return "warning";
    return "ok";
  }

  // --- history ------------------------------------------------------------------------------
  let history = { points: [], step: 1, fetchedAt: 0, minutes: rangeMinutes, source: "" };

  function summarise(points) {
    const sum = (key) => points.reduce((total, p) => total + (num(p[key]) ? p[key] : 0), 0);
    const worst = (key) => {
      const values = points.map((p) => p[key]).filter(num);
      return values.length ? Math.max(...values) : undefined;
    };
    const ended = sum("ended"), failed = sum("failed");
    return {
      calls: sum("calls"), failed, alerts_fired: sum("alerts_fired"),
      error_rate: ended ? (100 * failed) / ended : 0,
      worst_p95_ms: worst("p95_ms"), peak_active: worst("active_calls"),
    };
  }

  async function loadHistory() {
    const minutes = rangeMinutes, step = stepFor(minutes);
    const answer = await cw.api(`history?minutes=${minutes}&step=${step}`, []);
    const points = (answer.points || []).map((p) => Object.assign({}, p, { t: Date.parse(p.t) }));
    history = { points, step, minutes, fetchedAt: Date.now(), source: answer.source || "" };
    drawHistory();
  }

  function alertMarks(points) {
    return points.flatMap((p) => (p.alerts || []).map((a) => ({
      t: Date.parse(a.t), cls: a.status === "resolved" ? "resolved" : "firing",
      title: `${a.status} · ${a.severity} · ${a.title}`,
    })));
  }

  const STAGE_CLASSES = ["s0", "s1", "s2", "s3", "s4", "s5"];
  // Voice pipeline order first (speech-to-text, model, text-to-speech), then the rest by name.
  const STAGE_ORDER = [/stt|transcri/i, /llm|generat/i, /tts|synthes/i];
  const stageRank = (name) => {
    const rank = STAGE_ORDER.findIndex((re) => re.test(name));
    return rank < 0 ? STAGE_ORDER.length : rank;
  };
  const byStage = (a, b) => stageRank(a) - stageRank(b) || a.localeCompare(b);

  function drawHistory() {
    const { points, step } = history;
    const to = Date.now(), from = to - history.minutes * MINUTE_MS;
    const base = { points, from, to, stepMs: step * MINUTE_MS, marks: alertMarks(points) };
    const budget = lastBudget;
    cw.timeChart($("latency-chart"), Object.assign({}, base, {
      budget, axis: (v) => (v >= 1000 ? `${+(v / 1000).toFixed(2)} s` : `${v} ms`),
      series: ["p50", "p95", "p99"].map((k) => ({ cls: k, get: (p) => p[k + "_ms"] })),
    }));
    cw.timeChart($("calls-chart"), Object.assign({}, base, {
      series: [{ cls: "calls", bars: true, get: (p) => p.calls }, { cls: "failed", bars: true, get: (p) => p.failed }],
    }));
    cw.timeChart($("errors-chart"), Object.assign({}, base, {
      min: 5, axis: (v) => `${v}%`,
      series: [{ cls: "error-rate", get: (p) => (p.ended ? p.error_rate : null) }],
    }));
    cw.timeChart($("active-chart"), Object.assign({}, base, {
      series: [{ cls: "active", get: (p) => p.active_calls }],
    }));
    const names = [...new Set(points.flatMap((p) => Object.keys(p.stages_p95_ms || {})))].sort(byStage).slice(0, STAGE_CLASSES.length);
    cw.timeChart($("stages-chart"), Object.assign({}, base, {
      axis: (v) => `${v} ms`,
      series: names.map((name, i) => ({ cls: STAGE_CLASSES[i], get: (p) => (p.stages_p95_ms || {})[name] })),
    }));
    $("stage-keys").replaceChildren(...names.map((name, i) => node("span", { class: "key " + STAGE_CLASSES[i] }, name)));
    drawCallLists(points);
    drawInstances(points);
    $("range-label").textContent = RANGE_NAMES[history.minutes];
    $("history-source").textContent = history.source === "prometheus" ? "from Prometheus" : points.length ? `${points.length} points on disk` : "no history yet";
  }

  function drawCallLists(points) {
    const longest = points.flatMap((p) => p.longest_calls || []).sort((a, b) => b.duration_sec - a.duration_sec);
    const seen = new Set();
    const top = longest.filter((c) => !seen.has(c.call_id) && seen.add(c.call_id)).slice(0, LISTED);
    $("longest-calls").replaceChildren(...top.map((c) => {
      const li = node("li");
      li.append(cw.callLink(c.call_id), node("span", { class: "bar-value", "data-value": String(c.duration_sec) }, format(c.duration_sec, "sec")));
      return li;
    }));
    if (!top.length) $("longest-calls").append(node("li", { class: "empty" }, "no call ended in this range"));
    const failed = [...new Set(points.slice().reverse().flatMap((p) => p.failed_calls || []))].slice(0, LISTED);
    $("failed-calls").replaceChildren(...failed.map((id) => { const li = node("li"); li.append(cw.callLink(id)); return li; }));
    if (!failed.length) $("failed-calls").append(node("li", { class: "empty" }, "no failed call in this range"));
  }

  function drawInstances(points) {
    const totals = {};
    for (const p of points) for (const [name, n] of Object.entries(p.instances || {})) totals[name] = (totals[name] || 0) + n;
    const rows = Object.entries(totals).sort((a, b) => b[1] - a[1]).slice(0, 20);
    $("instances-panel").hidden = !rows.length;
    const scale = Math.max(1, ...rows.map(([, n]) => n));
    bars($("instances"), rows.map(([name, n]) => ({
      name, label: node("div", { class: "bar-value" }, format(Math.round(n))), segments: [{ cls: "seg p50", value: n }],
    })), scale);
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

  function drawStages(performance) {
    const ops = Object.entries(performance || {}).sort(([a], [b]) => byStage(a, b)).slice(0, 12);
    const scale = Math.max(1, ...ops.map(([, s]) => s.p99_ms || 0));
    bars($("stages"), ops.map(([name, s]) => {
      const label = node("div", { class: "bar-value" });
      label.append(
        node("b", cw.metricAttrs(["performance", name, "p50_ms"], "ms")),
        document.createTextNode(" · "),
        node("span", cw.metricAttrs(["performance", name, "p95_ms"], "ms")),
        document.createTextNode(" · "),
        node("span", cw.metricAttrs(["performance", name, "p99_ms"], "ms")),
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
      label: node("div", Object.assign({ class: "bar-value" }, cw.metricAttrs(["errors", "errors_by_type", name]))),
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
      const call = node("td", { class: "mono" });
      call.append(e.call_id ? cw.callLink(e.call_id) : document.createTextNode("—"));
      row.append(node("td", {}, cw.clock(e.timestamp)), node("td", { class: "etype" }, e.error_type || ""),
        call, node("td", { class: "msg" }, e.message || ""));
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
      pic.append(cw.svg("path", { d: arc(1), class: "gauge-track" }));
      if (num(value)) {
        const frac = Math.max(0.001, Math.min(1, value / 100));
        pic.append(cw.svg("path", { d: arc(frac), class: "gauge-fill " + level(value, limits[key]) }));
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
    li.append(text, node("time", {}, cw.clock(past ? a.ends_at || a.timestamp : a.starts_at || a.timestamp)));
    return li;
  }

  // The route lists at most ``limit`` firing alerts and counts them all.
  function drawAlerts(alerts) {
    const active = (alerts.active || []).slice(0, LISTED);
    const count = num(alerts.active_count) ? alerts.active_count : active.length;
    const list = $("alerts");
    list.replaceChildren(...active.map((a) => alertItem(a, false)));
    if (count > active.length) list.append(node("li", { class: "more" }, `and ${(count - active.length).toLocaleString("en-US")} more firing`));
    if (!count) list.append(node("li", { class: "all-clear" }, "All clear — no alerts firing"));
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

  let lastBudget = DEFAULT_BUDGET_MS;
  function render(metrics, alerts, health) {
    const limits = (alerts && alerts.thresholds) || {};
    const calls = metrics.calls || {};
    const finished = (calls.successful_calls || 0) + (calls.failed_calls || 0);
    lastBudget = budgetOf(limits);
    const data = Object.assign({}, metrics, {
      thresholds: limits,
      alerts: { active_count: num(alerts.active_count) ? alerts.active_count : (alerts.active || []).length },
      derived: {
        success_rate: finished ? (100 * calls.successful_calls) / finished : undefined,
        budget_ms: lastBudget,
      },
      range: summarise(history.points),
    });
    drawStages(metrics.performance);
    drawErrorTypes(metrics.errors);
    cw.fillMetrics(document, data);
    drawRecentErrors(metrics.errors);
    drawGauges(metrics.system, limits);
    drawAlerts(alerts);
    const cap = cw.dig(limits, "active_calls.critical");
    $("capacity-fill").style.width = num(cap) && cap > 0 ? Math.min(100, (100 * (calls.active_calls || 0)) / cap) + "%" : "0";
    $("capacity-fill").className = level(calls.active_calls, limits.active_calls);
    const state = String((health && health.status) || "unknown");
    $("status").dataset.status = state;
    $("status").textContent = state;
    document.body.dataset.health = state;
    $("updated").textContent = cw.clock(Date.now());
  }

  let timer = null;
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
      const stale = history.minutes !== rangeMinutes || Date.now() - history.fetchedAt > HISTORY_REFRESH_MS;
      const [metrics, alerts, health] = await Promise.all([
        cw.api("metrics"), cw.api("alerts?limit=20"), cw.api("health/detailed"), stale ? loadHistory() : null,
      ]);
      $("auth").hidden = true;
      $("offline").hidden = true;
      render(metrics, alerts, health);
      document.body.dataset.ready = "true";
    } catch (error) {
      if (error instanceof cw.Unauthorized) {
        cw.locked();
        return; // wait for the form
      }
      console.error("callwatch dashboard:", error);
      $("offline").hidden = false;
    } finally {
      running = false;
    }
    timer = setTimeout(refresh, REFRESH_MS);
  }

  function choose(minutes) {
    rangeMinutes = minutes;
    sessionStorage.setItem(RANGE_KEY, String(minutes));
    for (const button of $("range").querySelectorAll("button")) {
      button.setAttribute("aria-pressed", String(Number(button.dataset.minutes) === minutes));
    }
    refresh();
  }
  $("range").addEventListener("click", (event) => {
    const button = event.target.closest("button[data-minutes]");
    if (button) choose(Number(button.dataset.minutes));
  });
  const asked = /[?&]range=(\d+)/.exec(location.search);
  if (asked && RANGE_NAMES[Number(asked[1])]) rangeMinutes = Number(asked[1]);
  for (const button of $("range").querySelectorAll("button")) {
    button.setAttribute("aria-pressed", String(Number(button.dataset.minutes) === rangeMinutes));
  }

  cw.guard(refresh);
  document.addEventListener("visibilitychange", () => { if (!document.hidden) refresh(); });
  window.addEventListener("resize", drawHistory);
  refresh();
})();
