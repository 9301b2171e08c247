// researchgym viewer: an overview of a run and a page per episode; for ML-Bench judgments, their
// summary, the list of judged answers and a page per answer. Plain DOM, no framework.
// Every text from a trajectory or the store is put in the page with textContent, never as HTML.
"use strict";

const PREVIEW_CHARS = 2000;   // an observation shows this much until "show all"
const POLL_MS = 3000;         // while something is running, the page re-reads the run
const app = document.getElementById("app");
let pollTimer = null;

// ------------------------------------------------------------------ data access
async function load(path) {
  const bundle = window.RG_BUNDLE;
  if (bundle) {  // an exported bundle: every answer is already here
    const parts = path.split("/");
    if (path === "overview") return bundle.overview;
    if (parts[0] === "episodes" && parts.length === 2) {
      const episode = bundle.episodes[decodeURIComponent(parts[1])];
      if (!episode) throw new Error("no such episode in this bundle");
      return episode;
    }
    if (parts[0] === "episodes" && parts[4] === "observation") {
      const byStep = bundle.observations[decodeURIComponent(parts[1])] || {};
      return byStep[parts[3]];
    }
    const mlbench = bundle.mlbench || {summary: {run: bundle.overview.run, answers: 0, summary: null}, answers: [], records: {}};
    if (path === "mlbench") return mlbench.summary;
    if (path === "mlbench/answers") return mlbench.answers;
    if (parts[0] === "mlbench" && parts[1] === "answers" && parts.length === 3) {
      const record = mlbench.records[decodeURIComponent(parts[2])];
      if (!record) throw new Error("no such ML-Bench answer in this bundle");
      return record;
    }
    throw new Error("not in this bundle: " + path);
  }
  const response = await fetch("api/" + path, {cache: "no-store"});
  if (!response.ok) {
    let message = response.statusText;
    try { message = (await response.json()).error; } catch (e) { /* not JSON */ }
    throw new Error(message);
  }
  return path.endsWith("/observation") ? response.text() : response.json();
}

// ------------------------------------------------------------------ DOM helpers
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function fmt(value, digits = 4) {
  if (value === null || value === undefined || value === "") return "–";
  if (typeof value === "number") return Number.isInteger(value) ? String(value) : value.toPrecision(digits);
  return String(value);
}

function money(value) { return value === null || value === undefined ? "–" : "$" + Number(value).toFixed(4); }

function table(header, rows, attrs) {
  return el("table", attrs || {},
    el("thead", {}, el("tr", {}, header.map(h => el("th", {text: h})))),
    el("tbody", {}, rows.map(row => el("tr", row.attrs || {}, row.cells.map(c => c instanceof Node ? el("td", {}, c) : el("td", {text: fmt(c)}))))));
}

function episodeLink(key, text) { return el("a", {href: "#/episode/" + encodeURIComponent(key), text: text || key}); }

function schedule(fn) {
  clearTimeout(pollTimer);
  pollTimer = null;
  if (!window.RG_BUNDLE) pollTimer = setTimeout(fn, POLL_MS);
}

// ------------------------------------------------------------------ overview
const filters = {task: "", method: "", status: "", text: ""};

async function showOverview() {
  const data = await load("overview");
  document.getElementById("run-name").textContent = data.run;
  const episodes = data.episodes;
  if (!episodes.length && data.mlbench_answers) {  // a run of ML-Bench judgments only
    location.replace("#/mlbench");
    return;
  }
  const running = episodes.filter(e => e.status === "running" || e.status === "planned").length;
  document.getElementById("live").textContent = running ? `${running} episode(s) running or planned: updating` : "";
  const counts = {};
  for (const e of episodes) counts[e.status] = (counts[e.status] || 0) + 1;
  const parts = [el("h1", {text: "Run " + data.run}),
    el("p", {class: "muted", text: `${episodes.length} episodes: ` +
      Object.entries(counts).map(([s, n]) => `${n} ${s}`).join(", ")})];
  if (data.mlbench_answers) {
    parts.push(el("p", {}, el("a", {href: "#/mlbench", id: "mlbench-link", text: `ML-Bench: ${data.mlbench_answers} judged answers →`})));
  }
  const s = data.summary;
  if (s) {
    parts.push(el("h2", {text: "Scores (best attempt / best submission)"}));
    parts.push(table(["task", "direction", "baseline", ...s.methods],
      s.tasks.map(task => ({cells: [task, s.directions[task], s.baselines[task],
        ...s.methods.map(m => `${fmt(s.best_attempt[task][m])} / ${fmt(s.best_submission[task][m])}`)]})),
      {id: "scores"}));
    const forgeable = Object.entries(s.stdout_scored || {});
    if (forgeable.length) {
      parts.push(el("p", {id: "forgeable", class: "warning", text: "Scores an agent could forge (read from the " +
        "evaluator's printed output, MLGym's convention, not the result channel): " +
        forgeable.map(([task, methods]) => `${task} (${methods.join(", ")})`).join("; ")}));
    }
    parts.push(el("h2", {text: "AUP, cost and exit statuses"}));
    const categories = [...new Set(Object.values(s.exits).flatMap(c => Object.keys(c)))].sort();
    parts.push(table(["method", "AUP best attempt", "AUP best submission", "mean cost / episode", ...categories],
      ["baseline", ...s.methods].map(m => ({cells: [m, fmt((s.aup["best attempt"] || {})[m], 3),
        fmt((s.aup["best submission"] || {})[m], 3), m === "baseline" ? "–" : money(s.costs[m]),
        ...categories.map(c => m === "baseline" ? "–" : ((s.exits[m] || {})[c] || 0))]})), {id: "aup"}));
  }
  parts.push(el("h2", {text: "Episodes"}));
  const options = key => ["", ...new Set(episodes.map(e => e[key]))].sort();
  const filterBar = el("div", {class: "filters"},
    ...["task", "method", "status"].map(key => el("label", {}, key + " ",
      el("select", {"data-filter": key, onchange: ev => { filters[key] = ev.target.value; renderRows(); }},
        options(key).map(v => { const o = el("option", {value: v, text: v || "all"}); o.selected = filters[key] === v; return o; })))),
    el("label", {}, "search ", el("input", {type: "search", value: filters.text, placeholder: "id, exit status…",
      oninput: ev => { filters.text = ev.target.value.toLowerCase(); renderRows(); }})));
  parts.push(filterBar);
  const body = el("tbody");
  const episodesTable = el("table", {id: "episodes"},
    el("thead", {}, el("tr", {}, ["episode", "task", "method", "seed", "status", "exit status", "final score",
      "steps", "cost"].map(h => el("th", {text: h})))), body);
  function renderRows() {
    body.replaceChildren(...episodes.filter(e =>
      (!filters.task || e.task === filters.task) && (!filters.method || e.method === filters.method) &&
      (!filters.status || e.status === filters.status) &&
      (!filters.text || `${e.id} ${e.exit_status || ""} ${e.error || ""}`.toLowerCase().includes(filters.text)))
      .map(e => el("tr", {class: "status-" + e.status, "data-episode": e.key},
        el("td", {}, e.has_trajectory ? episodeLink(e.key, e.id) : e.id), el("td", {text: e.task}),
        el("td", {text: e.method}), el("td", {text: fmt(e.seed)}), el("td", {text: e.status}),
        el("td", {text: fmt(e.exit_status), title: e.error || ""}), el("td", {text: fmt(e.final_score)}),
        el("td", {text: fmt(e.steps)}), el("td", {text: money(e.cost)}))));
  }
  renderRows();
  parts.push(episodesTable);
  app.replaceChildren(...parts);
  if (running) schedule(() => route(true));
}

// ------------------------------------------------------------------ episode
function scoreChart(steps, end) {
  const points = [];
  for (const step of steps) {
    for (const score of step.scores || []) {
      for (const split of ["validation", "test"]) {
        const value = score[split] && score[split].value;
        if (typeof value === "number") points.push({step: step.step, split, value});
      }
    }
  }
  if (!points.length) return el("p", {class: "muted", id: "no-scores", text: "No scores yet."});
  const width = 640, height = 220, pad = 56;
  const maxStep = Math.max(...steps.map(s => s.step), 1);
  const values = points.map(p => p.value);
  let low = Math.min(...values), high = Math.max(...values);
  if (low === high) { low -= 0.5; high += 0.5; }
  const x = step => pad + (width - 2 * pad) * (step / maxStep);
  const y = value => height - pad - (height - 2 * pad) * ((value - low) / (high - low));
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("class", "score-chart");
  svg.setAttribute("role", "img");
  const add = (tag, attrs, text) => {
    const node = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    svg.append(node);
    return node;
  };
  add("line", {x1: pad, y1: height - pad, x2: width - pad, y2: height - pad, class: "axis"});
  add("line", {x1: pad, y1: pad, x2: pad, y2: height - pad, class: "axis"});
  add("text", {x: pad - 4, y: pad + 4, "text-anchor": "end", class: "tick"}, fmt(high));
  add("text", {x: pad - 4, y: height - pad, "text-anchor": "end", class: "tick"}, fmt(low));
  add("text", {x: width - pad, y: height - pad + 16, "text-anchor": "end", class: "tick"}, `step ${maxStep}`);
  for (const split of ["validation", "test"]) {
    const series = points.filter(p => p.split === split);
    if (series.length > 1) add("polyline", {points: series.map(p => `${x(p.step)},${y(p.value)}`).join(" "), class: "line " + split});
    for (const p of series) {
      const dot = add("circle", {cx: x(p.step), cy: y(p.value), r: 4, class: "point " + split, "data-step": p.step});
      const title = document.createElementNS(ns, "title");
      title.textContent = `step ${p.step}, ${split}: ${fmt(p.value)}`;
      dot.append(title);
    }
  }
  const legend = el("p", {class: "legend"}, el("span", {class: "key validation", text: "● validation"}), " ",
    el("span", {class: "key test", text: "● hidden test"}),
    end && typeof end.final_score === "number" ? ` · final score ${fmt(end.final_score)}` : "");
  return el("div", {id: "chart"}, svg, legend);
}

function observationBlock(episodeId, step) {
  const pre = el("pre", {class: "observation"});
  const full = step.observation_chars;
  const shown = step.observation;
  const controls = el("div", {class: "controls"});
  const renderPreview = () => {
    pre.textContent = shown.slice(0, PREVIEW_CHARS);
    controls.replaceChildren();
    if (full > PREVIEW_CHARS) {
      controls.append(el("span", {class: "muted", text: `${PREVIEW_CHARS.toLocaleString()} of ${full.toLocaleString()} characters · `}),
        el("button", {type: "button", class: "show-all", text: "show all", onclick: async () => {
          if (full > shown.length) {
            pre.textContent = "loading…";
            pre.textContent = await load(`episodes/${encodeURIComponent(episodeId)}/steps/${step.step}/observation`);
          } else {
            pre.textContent = shown;
          }
          controls.replaceChildren(el("button", {type: "button", text: "show less", onclick: renderPreview}));
        }}));
    }
  };
  renderPreview();
  return [pre, controls];
}

function stepCard(episodeId, step, count) {
  const first = (step.action || "").split("\n")[0];
  const status = step.timed_out ? "timeout" : `exit ${fmt(step.exit_code)}`;
  const scored = (step.scores || []).map(s => s.validation ? `validation ${fmt(s.validation.value)}` : s.status || "").filter(Boolean);
  const anchor = "step-" + step.step;
  const nav = el("div", {class: "step-nav"},
    step.step > 1 ? el("a", {href: `#/episode/${encodeURIComponent(episodeId)}/step/${step.step - 1}`, text: "← previous"}) : "",
    step.step < count ? el("a", {href: `#/episode/${encodeURIComponent(episodeId)}/step/${step.step + 1}`, text: "next →"}) : "");
  return el("details", {class: "step", id: anchor, open: ""},
    el("summary", {}, el("strong", {text: `Step ${step.step}`}), " ", el("code", {text: first.slice(0, 120)}),
      el("span", {class: "muted", text: ` · ${status} · ${fmt(step.step_s, 3)} s` +
        (step.input_tokens || step.output_tokens ? ` · ${step.input_tokens}+${step.output_tokens} tokens` : "") +
        (step.cost ? ` · ${money(step.cost)}` : "")}),
      scored.length ? el("span", {class: "score-badge", text: scored.join(", ")}) : ""),
    step.thought ? [el("h4", {text: "Discussion"}), el("pre", {class: "thought", text: step.thought})] : "",
    step.format_errors.length ? el("p", {class: "warning", text: "format errors: " + step.format_errors.join(" | ")}) : "",
    el("h4", {text: "Action"}), el("pre", {class: "action", text: step.action}),
    el("h4", {text: "Observation"}), ...observationBlock(episodeId, step),
    step.tool_calls.length ? [el("h4", {text: "Tool gateway calls"}), el("ul", {},
      step.tool_calls.map(c => el("li", {text: `${c.tool}: ${c.ok ? "ok" : "refused: " + c.error}`})))] : "",
    nav);
}

async function showEpisode(id, focusStep, refreshing) {
  const data = await load("episodes/" + encodeURIComponent(id));
  const s = data.summary;
  const live = s.status === "running" || s.status === "planned";
  document.getElementById("live").textContent = live ? "episode running: updating" : "";
  const existing = document.getElementById("steps");
  if (refreshing && existing && existing.dataset.episode === id) {  // append new steps only: open cards stay open
    const have = existing.children.length;
    for (const step of data.steps.slice(have)) existing.append(stepCard(id, step, data.steps.length));
    document.getElementById("chart").replaceWith(scoreChart(data.steps, data.end));
    document.getElementById("counters").replaceWith(counters(data));
    if (live) schedule(() => showEpisode(id, null, true));
    return;
  }
  const stepsBox = el("div", {id: "steps", "data-episode": id}, data.steps.map(step => stepCard(id, step, data.steps.length)));
  const reset = data.reset || {};
  app.replaceChildren(
    el("p", {}, el("a", {href: "#/", text: "← all episodes"})),
    el("h1", {text: `${s.task} · ${s.method} · seed ${fmt(s.seed)}`}),
    counters(data),
    el("h2", {text: "Scores over steps"}), scoreChart(data.steps, data.end),
    el("details", {class: "prompt"}, el("summary", {text: "Task prompt"}), el("pre", {text: reset.prompt || ""})),
    el("h2", {text: `Steps (${data.steps.length})`}),
    el("nav", {class: "step-index"}, data.steps.map(step =>
      el("a", {href: `#/episode/${encodeURIComponent(id)}/step/${step.step}`, text: String(step.step)}))),
    stepsBox,
    data.autosubmit ? el("div", {class: "end"}, el("h3", {text: "Auto-submission: " + data.autosubmit.reason}),
      el("pre", {text: data.autosubmit.observation})) : "",
    data.end ? el("div", {class: "end", id: "end"}, el("h3", {text: "End"}),
      el("p", {text: `exit status ${fmt(data.end.exit_status)} · final score ${fmt(data.end.final_score)}`})) : "");
  if (focusStep) {
    const target = document.getElementById("step-" + focusStep);
    if (target) { target.open = true; target.scrollIntoView(); }
  }
  if (live) schedule(() => showEpisode(id, null, true));
}

function counters(data) {
  const s = data.summary;
  const tokensIn = data.steps.reduce((a, st) => a + st.input_tokens, 0);
  const tokensOut = data.steps.reduce((a, st) => a + st.output_tokens, 0);
  const cost = data.steps.reduce((a, st) => a + st.cost, 0);
  const items = [["status", s.status], ["exit status", s.exit_status], ["final score", s.final_score],
    ["steps", data.steps.length], ["tokens sent", tokensIn], ["tokens received", tokensOut], ["cost", money(cost)]];
  return el("dl", {class: "counters", id: "counters"}, items.map(([k, v]) => el("div", {}, el("dt", {text: k}), el("dd", {text: fmt(v)}))));
}

// ------------------------------------------------------------------ ML-Bench
const mlFilters = {setting: "", model: "", mode: "", repo: "", result: "", text: ""};

function share(value) { return value === null || value === undefined ? "–" : Number(value).toFixed(3); }
function mark(ok) { return ok ? "✓" : "✗"; }
function answerLink(key, text) { return el("a", {href: "#/mlbench/" + encodeURIComponent(key), text: text}); }

async function showMLBench() {
  const [data, answers] = await Promise.all([load("mlbench"), load("mlbench/answers")]);
  document.getElementById("run-name").textContent = data.run;
  document.getElementById("live").textContent = "";
  const parts = [el("p", {}, el("a", {href: "#/", text: "← run overview"})), el("h1", {text: "ML-Bench · " + data.run})];
  const s = data.summary;
  if (!s) {
    app.replaceChildren(...parts, el("p", {class: "muted", id: "mlbench-none", text: "This run has no ML-Bench judgments."}));
    return;
  }
  const ks = [...new Set(s.groups.map(g => g.rates.attempts))];
  const kName = ks.length === 1 ? `pass@${ks[0]}` : "pass@k";
  parts.push(el("p", {class: "muted", text: `${answers.length} judged answers. pass@1 and ${kName}: the unbiased ` +
    "estimator, k = the attempts every sample has; first-pass@k: ML-Bench's original number, for comparison. " +
    "Judge: strict (what ran) or original (ML-Bench's published rules)."}));
  parts.push(el("h2", {text: "pass@k"}), table(["setting", "model", "judge", "samples", "attempts", "pass@1", kName, "first-pass@k", "cost"],
    s.groups.map(g => ({cells: [g.setting, g.model, g.mode, g.rates.samples, g.rates.attempts, share(g.rates.pass_at_1),
      share(g.rates.pass_at_k), share(g.rates.first_pass_at_k), money(g.cost)]})), {id: "mlbench-groups"}));
  parts.push(el("h2", {text: "By repository"}), table(["setting", "model", "judge", "repository", "samples", "pass@1", kName],
    s.groups.flatMap(g => Object.entries(g.repos).map(([repo, r]) => ({cells: [g.setting, g.model, g.mode, repo, r.samples,
      share(r.pass_at_1), share(r.pass_at_k)]}))), {id: "mlbench-repos"}));
  parts.push(el("h2", {text: "Failed checks"}), table(["setting", "model", "judge", "answers", "arguments", "type", "execution",
    "timeouts", "timeouts passed"], s.groups.map(g => ({cells: [g.setting, g.model, g.mode, g.errors.answers,
      g.errors.arguments_failed, g.errors.type_failed, g.errors.execution_failed, g.errors.timeouts, g.errors.timeouts_passed]})),
    {id: "mlbench-errors"}));
  if (s.comparisons.length) {
    parts.push(el("h2", {text: "Strict vs original judge"}), table(["setting", "model", "samples", "pass@1 strict",
      "pass@1 original", kName + " strict", kName + " original", "failed checks strict (arg/type/exec)", "failed checks original"],
      s.comparisons.map(c => ({cells: [c.setting, c.model, c.strict.rates.samples, share(c.strict.rates.pass_at_1),
        share(c.original.rates.pass_at_1), share(c.strict.rates.pass_at_k), share(c.original.rates.pass_at_k),
        ...[c.strict, c.original].map(g => `${g.errors.arguments_failed}/${g.errors.type_failed}/${g.errors.execution_failed}`)]})),
      {id: "mlbench-compare"}));
  }
  parts.push(el("h2", {text: "Judged answers"}));
  const options = key => ["", ...new Set(answers.map(a => String(a[key])))].sort();
  const select = (key, label, values) => el("label", {}, label + " ",
    el("select", {"data-mlfilter": key, onchange: ev => { mlFilters[key] = ev.target.value; renderRows(); }},
      values.map(v => { const o = el("option", {value: v, text: v || "all"}); o.selected = mlFilters[key] === v; return o; })));
  parts.push(el("div", {class: "filters"}, select("setting", "setting", options("setting")), select("model", "model", options("model")),
    select("mode", "judge", options("mode")), select("repo", "repository", options("repo")),
    select("result", "result", ["", "passed", "failed"]),
    el("label", {}, "search ", el("input", {type: "search", value: mlFilters.text, placeholder: "sample…", "data-mlfilter": "text",
      oninput: ev => { mlFilters.text = ev.target.value.toLowerCase(); renderRows(); }}))));
  const body = el("tbody");
  parts.push(el("table", {id: "mlbench-answers"}, el("thead", {}, el("tr", {}, ["sample", "repository", "setting", "model",
    "attempt", "judge", "result", "arguments", "type", "execution"].map(h => el("th", {text: h})))), body));
  function renderRows() {
    body.replaceChildren(...answers.filter(a =>
      (!mlFilters.setting || a.setting === mlFilters.setting) && (!mlFilters.model || a.model === mlFilters.model) &&
      (!mlFilters.mode || a.mode === mlFilters.mode) && (!mlFilters.repo || a.repo === mlFilters.repo) &&
      (!mlFilters.result || (mlFilters.result === "passed") === a.passed) &&
      (!mlFilters.text || a.sample.toLowerCase().includes(mlFilters.text)))
      .map(a => el("tr", {class: a.passed ? "passed" : "failed", "data-answer": a.key},
        el("td", {}, answerLink(a.key, a.sample)), el("td", {text: a.repo}), el("td", {text: a.setting}),
        el("td", {text: a.model}), el("td", {text: String(a.attempt)}), el("td", {text: a.mode}),
        el("td", {class: "result", text: a.passed ? "pass" : "fail"}), el("td", {text: mark(a.arguments_ok)}),
        el("td", {text: mark(a.type_ok)}), el("td", {text: a.timed_out ? mark(a.execution_ok) + " timeout" : mark(a.execution_ok)}))));
  }
  renderRows();
  app.replaceChildren(...parts);
}

async function showAnswer(key) {
  const a = await load("mlbench/answers/" + encodeURIComponent(key));
  document.getElementById("live").textContent = "";
  const items = [["result", a.passed ? "pass" : "fail"], ["judge", a.mode], ["repository", a.repo], ["language", a.language],
    ["seconds", typeof a.seconds === "number" ? a.seconds.toFixed(2) : null], ["cost", money(a.cost)], ["run", a.run_id]];
  const parsed = (a.detail && a.detail.parsed) || {};
  app.replaceChildren(
    el("p", {}, el("a", {href: "#/mlbench", text: "← ML-Bench"})),
    el("h1", {text: `${a.sample} · ${a.setting} · ${a.model} · attempt ${a.attempt}`}),
    el("dl", {class: "counters", id: "answer-counters"}, items.map(([k, v]) => el("div", {}, el("dt", {text: k}), el("dd", {text: fmt(v)})))),
    el("h2", {text: "Verdict"}),
    el("div", {id: "checks"}, ["arguments", "type", "execution"].map(name => {
      const check = a.checks[name] || {};
      return el("div", {class: "check " + (check.passed ? "pass" : "fail"), id: "check-" + name},
        el("strong", {text: name}), " ", el("span", {class: "verdict", text: check.passed ? "pass" : "fail"}),
        el("p", {class: "message", text: check.detail || ""}));
    })),
    Object.keys(parsed).length ? el("details", {class: "parsed"}, el("summary", {text: `What the program parsed (${a.detail.parser || "parser"})`}),
      el("pre", {text: JSON.stringify(parsed, null, 2)})) : "",
    el("h2", {text: "Code judged"}), el("pre", {class: "code", id: "answer-code", text: a.code === null || a.code === undefined ? "(not stored)" : a.code}),
    // ML-Agent's rows keep the path of the episode's trajectory where the LLM setting keeps the reply
    el("h2", {text: a.setting === "agent" ? "Trajectory file" : "Reply"}), el("pre", {class: "reply", id: "answer-reply", text: a.reply || ""}),
    el("details", {class: "raw"}, el("summary", {text: "All of the judge's details"}), el("pre", {text: JSON.stringify(a.detail, null, 2)})));
}

// ------------------------------------------------------------------ routing
async function route(refreshing) {
  clearTimeout(pollTimer);
  const hash = location.hash.replace(/^#\/?/, "");
  const parts = hash.split("/");
  try {
    if (parts[0] === "mlbench" && parts[1]) {
      await showAnswer(decodeURIComponent(parts[1]));
    } else if (parts[0] === "mlbench") {
      await showMLBench();
    } else if (parts[0] === "episode" && parts[1]) {
      await showEpisode(decodeURIComponent(parts[1]), parts[2] === "step" ? parts[3] : null, refreshing === true);
    } else {
      await showOverview();
    }
  } catch (error) {
    app.replaceChildren(el("p", {class: "error", text: "Cannot show this: " + error.message}),
      el("p", {}, el("a", {href: "#/", text: "← all episodes"})));
  }
}

window.addEventListener("hashchange", () => route(false));
document.getElementById("refresh").addEventListener("click", () => route(false));
if (window.RG_BUNDLE) document.getElementById("refresh").hidden = true;
route(false);
