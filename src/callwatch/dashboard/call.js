// callwatch call page: one call's story from /monitoring/calls/{id} (what `callwatch trace
// CALL_ID --json` prints): turns with their stages, errors, audit events, every record.
"use strict";
(function () {
  const cw = window.callwatch;
  const { $, node, num, format } = cw;
  const BUDGET_MS = 800;
  const SHOWN_RECORDS = 1000;
  const callId = new URLSearchParams(location.search).get("id") || "";
  const STAGES = ["stt", "llm", "tts"];

  const extraOf = (r) => (r && typeof r.extra === "object" && r.extra) || {};
  const isTurn = (r) => r.message === "turn" && num(extraOf(r).latency_ms);
  const isError = (r) => ["ERROR", "CRITICAL"].includes(String(r.level).toUpperCase());
  const isAudit = (r) => r.chain !== undefined;

  // Nearest rank: the smallest latency at or above 95 % of the turns.
  function p95(values) {
    if (!values.length) return undefined;
    const sorted = values.slice().sort((a, b) => a - b);
    return sorted[Math.ceil(0.95 * sorted.length) - 1];
  }
  function sumOf(records, read) {
    const values = records.map(read).filter(num);
    return values.length ? values.reduce((a, b) => a + b, 0) : undefined;
  }

  function offsetOf(first) {
    const start = Date.parse(first);
    return (ts) => {
      const t = Date.parse(ts);
      return isNaN(t) || isNaN(start) ? "" : `+${((t - start) / 1000).toFixed(3)} s`;
    };
  }

  function summary(story) {
    const records = story.records || [];
    const turns = records.filter(isTurn);
    const latencies = turns.map((r) => extraOf(r).latency_ms);
    const stage = (r, name) => (extraOf(r).stages || {})[name] || {};
    const tokens = sumOf(turns, (r) => {
      const llm = stage(r, "llm");
      return num(llm.prompt_tokens) || num(llm.completion_tokens) ? (llm.prompt_tokens || 0) + (llm.completion_tokens || 0) : undefined;
    });
    return {
      call: {
        total_ms: story.total_ms, records: records.length, turns: turns.length,
        interruptions: turns.filter((r) => extraOf(r).interrupted === true).length,
        p95_ms: p95(latencies), worst_ms: latencies.length ? Math.max(...latencies) : undefined,
        budget_ms: BUDGET_MS, errors: records.filter(isError).length, audit: records.filter(isAudit).length,
        cost_usd: sumOf(records, (r) => extraOf(r).cost_usd), tokens,
        characters: sumOf(turns, (r) => stage(r, "tts").characters),
      },
    };
  }

  function drawTurns(records, at) {
    const turns = records.filter(isTurn);
    const body = $("turns");
    body.replaceChildren();
    if (!turns.length) {
      const row = node("tr"); row.append(node("td", { colspan: 6, class: "empty" }, "no turn records for this call"));
      body.append(row);
      return;
    }
    const scale = Math.max(BUDGET_MS * 1.25, ...turns.map((r) => extraOf(r).latency_ms));
    for (const r of turns) {
      const e = extraOf(r), stages = e.stages || {};
      const row = node("tr", { "data-turn": String(e.turn ?? ""), class: e.latency_ms > BUDGET_MS ? "slow" : "" });
      const latency = node("td", { class: "num", "data-value": String(e.latency_ms) }, format(e.latency_ms, "ms"));
      const track = node("div", { class: "track stage-track" });
      let left = 0;
      for (const name of STAGES) {
        const ttfb = (stages[name] || {}).ttfb_ms;
        if (!num(ttfb)) continue;
        const seg = node("span", { class: "seg " + name, title: `${name} ${format(ttfb, "ms")}`, "data-stage": name, "data-value": String(ttfb) });
        seg.style.left = (100 * left) / scale + "%";
        seg.style.width = (100 * ttfb) / scale + "%";
        track.append(seg);
        left += ttfb;
      }
      const budget = node("span", { class: "budget-tick" });
      budget.style.left = (100 * BUDGET_MS) / scale + "%";
      track.append(budget);
      const labels = STAGES.filter((n) => num((stages[n] || {}).ttfb_ms)).map((n) => `${n} ${format(stages[n].ttfb_ms, "ms")}`);
      const stageCell = node("td");
      stageCell.append(track, node("small", {}, labels.join(" · ")));
      const llm = stages.llm || {}, tts = stages.tts || {};
      const usage = [num(llm.prompt_tokens) ? `${llm.prompt_tokens} in` : "", num(llm.completion_tokens) ? `${llm.completion_tokens} out` : "",
        num(tts.characters) ? `${tts.characters} chars` : ""].filter(Boolean).join(" · ");
      row.append(node("td", { class: "num" }, String(e.turn ?? "")), node("td", { class: "mono" }, at(r.timestamp)), latency, stageCell,
        node("td", { class: "muted" }, usage || "—"), node("td", {}, e.interrupted ? "interrupted" : ""));
      if (e.interrupted) row.lastChild.className = "badge";
      body.append(row);
    }
  }

  function drawStageTable(stages) {
    const body = $("stage-table");
    const rows = Object.entries(stages || {}).sort((a, b) => b[1].total_ms - a[1].total_ms);
    body.replaceChildren(...rows.map(([name, s]) => {
      const row = node("tr");
      row.append(node("td", { class: "mono" }, name), node("td", { class: "num" }, String(s.count)),
        node("td", { class: "num" }, format(s.total_ms, "ms")), node("td", { class: "num" }, format(s.mean_ms, "ms")),
        node("td", { class: "num" }, format(s.max_ms, "ms")), node("td", { class: "num" + (s.failures ? " bad" : "") }, String(s.failures)));
      return row;
    }));
    if (!rows.length) {
      const row = node("tr"); row.append(node("td", { colspan: 6, class: "empty" }, "no timed stages"));
      body.append(row);
    }
  }

  function fields(extra) {
    return Object.entries(extra).filter(([k]) => k !== "stages")
      .map(([k, v]) => `${k}=${typeof v === "object" ? JSON.stringify(v) : v}`).join("  ");
  }

  function drawErrors(records, at) {
    const list = $("call-errors");
    const failures = records.filter(isError);
    list.replaceChildren(...failures.map((r) => {
      const li = node("li");
      li.append(node("div", { class: "failure-head" }, `${at(r.timestamp)}  ${r.message || ""}`));
      const exc = r.exception;
      if (exc && typeof exc === "object") {
        li.append(node("b", { class: "etype" }, `${exc.type || "Exception"}: ${exc.message || ""}`));
        const frames = (exc.frames || []).slice(-6).map((f) => `${f.file}:${f.line} in ${f.function}${f.code ? "\n    " + f.code : ""}`);
        if (frames.length) li.append(node("pre", {}, frames.join("\n")));
      }
      return li;
    }));
    if (!failures.length) list.append(node("li", { class: "empty" }, "no errors in this call"));
    const audit = records.filter(isAudit);
    $("call-audit").replaceChildren(...audit.map((r) => {
      const li = node("li");
      li.append(node("b", {}, r.message || "audit"), node("small", { class: "mono" }, `${at(r.timestamp)}  ${fields(extraOf(r))}`));
      return li;
    }));
    if (!audit.length) $("call-audit").append(node("li", { class: "empty" }, "no audit events"));
  }

  function drawTimeline(story, at) {
    const records = story.records || [];
    const body = $("timeline");
    body.replaceChildren(...records.slice(0, SHOWN_RECORDS).map((r) => {
      const row = node("tr", { class: "level-" + String(r.level || "").toLowerCase() });
      row.append(node("td", { class: "mono" }, at(r.timestamp)), node("td", { class: "lvl" }, r.level || ""),
        node("td", {}, r.message || ""), node("td", { class: "mono muted" }, fields(extraOf(r))));
      return row;
    }));
    const hidden = Math.max(0, records.length - SHOWN_RECORDS) + (story.records_left_out || 0);
    $("left-out").textContent = hidden ? `${hidden.toLocaleString("en-US")} records not shown` : `${records.length} records, ${story.files_scanned} files read`;
  }

  async function load() {
    $("call-id").textContent = callId || "—";
    document.title = `callwatch · call ${callId}`;
    try {
      const story = await cw.api("calls/" + encodeURIComponent(callId), [404]);
      $("auth").hidden = true;
      $("offline").hidden = true;
      $("missing").hidden = Boolean(story.found);
      const records = story.records || [];
      const at = offsetOf(story.first);
      cw.fillMetrics(document, summary(story));
      $("call-start").textContent = story.first ? new Date(story.first).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC") : "—";
      drawTurns(records, at);
      drawStageTable(story.stages);
      drawErrors(records, at);
      drawTimeline(story, at);
      $("status").dataset.status = story.found ? "healthy" : "degraded";
      $("status").textContent = story.found ? "found" : "not found";
      document.body.dataset.ready = "true";
    } catch (error) {
      if (error instanceof cw.Unauthorized) { cw.locked(); return; }
      console.error("callwatch call page:", error);
      $("offline").hidden = false;
      setTimeout(load, 5000);
    }
  }

  cw.guard(load);
  load();
})();
