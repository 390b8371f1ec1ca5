// Compare 2–4 runs: a picker (`#/compare`), then (`#/compare/<id>,<id>…`) the runs' final results
// (their Results cards) in one table with differences highlighted, one shared timeline (by step or
// by fraction of training) driving every panel kind side by side, every run's curves overlaid (a
// metric keeps its colour, a run its line style), and the config keys that differ highlighted.
import { api } from "./api.js";
import { el } from "./dom.js";
import { PanelBox } from "./panel_box.js";
import { RENDERERS } from "./panels/index.js";
import { GROUPS, PLOT_CONFIG, RUN_DASHES, cursorShapes, forAxis, groupOf, metricColor, metricsLayout } from "./plot_layout.js";
import { summarise } from "./results_card.js";

function flatten(obj, prefix = "", out = {}) {
  for (const [k, v] of Object.entries(obj ?? {})) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (v && typeof v === "object" && !Array.isArray(v)) flatten(v, key, out);
    else out[key] = JSON.stringify(v);
  }
  return out;
}

export function configDiff(configs) {
  const flat = configs.map((c) => flatten(c));
  const keys = [...new Set(flat.flatMap((f) => Object.keys(f)))].sort();
  return keys.map((k) => ({ key: k, values: flat.map((f) => f[k]), differs: new Set(flat.map((f) => f[k])).size > 1 }));
}

async function picker(view) {
  const search = el("input", { id: "compare-search", placeholder: "search name or notes" });
  const tag = el("input", { id: "compare-tag", placeholder: "tag" });
  const list = el("div", { id: "compare-list" });
  const go = el("button", { class: "primary", id: "compare-go", disabled: "" }, "Compare");
  const chosen = new Set();
  go.addEventListener("click", () => { location.hash = `#/compare/${[...chosen].join(",")}`; });
  async function refresh() {
    const params = {};
    if (search.value.trim()) params.q = search.value.trim();
    if (tag.value.trim()) params.tag = tag.value.trim();
    const runs = await api.runs(params);
    list.replaceChildren(...runs.map((r) => {
      const box = el("input", { type: "checkbox", "data-run": r.id, ...(chosen.has(r.id) ? { checked: "" } : {}) });
      box.addEventListener("change", () => {
        if (box.checked && chosen.size >= 4) { box.checked = false; return; }
        box.checked ? chosen.add(r.id) : chosen.delete(r.id);
        go.disabled = chosen.size < 2;
      });
      return el("label", { class: "pick" }, box, ` ${r.title} `, el("span", { class: `status ${r.status}` }, r.status),
        el("span", { class: "muted" }, ` ${(r.tags ?? []).join(", ")} · ${new Date(r.created_at).toLocaleString()}`));
    }));
  }
  search.addEventListener("input", refresh);
  tag.addEventListener("input", refresh);
  view.replaceChildren(el("h2", {}, "Compare runs (pick 2–4)"), el("div", {}, search, " ", tag, " ", go), list);
  await refresh();
  return { close() {} };
}

async function history(id) {
  const frames = [];
  let from = 0;
  for (;;) {
    const page = await api.frames(id, { panels: false, from_step: from, limit: 5000 });
    frames.push(...page.frames);
    if (page.next_from_step == null) return frames;
    from = page.next_from_step;
  }
}

// The final results of the runs side by side (each run's Results card rows), rows whose values
// differ between the runs highlighted.
export function resultsTable(runs, summaries) {
  const keys = [];
  const label = {};
  for (const s of summaries) for (const r of s.rows) if (!keys.includes(r.key)) { keys.push(r.key); label[r.key] = r.label; }
  const table = el("table", { class: "config-diff results-compare", id: "results-compare" },
    el("tr", {}, el("th", {}, "result"), ...runs.map((r, i) => el("th", { style: `border-bottom:2px ${RUN_DASHES[i]} currentColor` }, r.title))),
    el("tr", { class: "headline" }, el("td", {}, "headline"), ...summaries.map((s) => el("td", {}, s.headline))));
  for (const k of keys) {
    const cells = summaries.map((s) => s.rows.find((r) => r.key === k));
    const texts = cells.map((c) => c?.text ?? "–");
    const differs = new Set(texts).size > 1;
    table.append(el("tr", { class: differs ? "diff" : "", "data-result-key": k }, el("td", {}, label[k]),
      ...cells.map((c) => el("td", { class: "num", "data-value": c?.value ?? "" }, c ? [c.text, " ", el("span", { class: `badge ${c.badge}` }, c.badge)] : "–"))));
  }
  return table;
}

async function lastPanels(run, frames) {
  const last = frames.at(-1);
  if (!last) return null;
  const page = await api.frames(run.id, { from_step: last.step, to_step: last.step, limit: 1 });
  return page.frames[0]?.panels ?? null;
}

async function compare(view, ids) {
  const runs = await Promise.all(ids.map((id) => api.run(id)));
  const frames = await Promise.all(ids.map(history));
  const finals = await Promise.all(runs.map((r, i) => lastPanels(r, frames[i])));
  const summaries = runs.map((r, i) => summarise(r, frames[i].at(-1)?.metrics ?? r.metrics, finals[i]));
  const alignSel = el("select", { id: "compare-align" }, el("option", { value: "step" }, "align by step"),
    el("option", { value: "fraction" }, "align by fraction of training"));
  const slider = el("input", { type: "range", id: "compare-timeline", min: 0, max: 1000, value: 1000 });
  const cursor = el("span", { class: "muted", id: "compare-cursor" });
  const heads = el("div", { class: "compare-heads", style: `grid-template-columns:repeat(${runs.length},minmax(0,1fr))` },
    ...runs.map((r, i) => el("div", { class: "panel compare-col", "data-run": r.id },
      el("h3", {}, el("a", { href: `#/runs/${r.id}` }, r.title), " ", el("span", { class: `status ${r.status}` }, r.status),
        el("span", { class: "muted", title: "this run's line style in the curves" }, ` · ${RUN_DASHES[i]} lines`)),
      el("div", { class: "muted", "data-step-of": r.id }, "–"))));
  const rowsBox = el("div", { id: "compare-panels" });
  const rows = {}; // kind → {root, boxes: [PanelBox per run]}
  function rowFor(kind) {
    if (rows[kind] || !RENDERERS[kind]) return rows[kind];
    const boxes = runs.map((r) => new PanelBox(kind, RENDERERS[kind], { label: r.title }));
    boxes.forEach((b, i) => { b.root.dataset.run = runs[i].id; b.root.classList.remove("wide"); });
    const root = el("div", { class: "compare-row", "data-compare-kind": kind,
      style: `grid-template-columns:repeat(${runs.length},minmax(0,1fr))` }, ...boxes.map((b) => b.root));
    // rows in the renderers' order, whichever run's frame brings a kind first
    const order = Object.keys(RENDERERS);
    const next = order.slice(order.indexOf(kind) + 1).map((k) => rows[k]?.root).find(Boolean);
    rowsBox.insertBefore(root, next ?? null);
    return (rows[kind] = { root, boxes });
  }
  const curves = el("div", { id: "compare-curves", class: "curve-set" });
  const diff = configDiff(runs.map((r) => r.config));
  const onlyDiff = el("input", { type: "checkbox", id: "only-diff", checked: "" });
  const table = el("table", { class: "config-diff", id: "config-diff" });
  function drawTable() {
    const shown = diff.filter((d) => d.differs || !onlyDiff.checked);
    table.replaceChildren(el("tr", {}, el("th", {}, "config"), ...runs.map((r) => el("th", {}, r.title))),
      ...shown.map((d) => el("tr", { class: d.differs ? "diff" : "" }, el("td", {}, d.key), ...d.values.map((v) => el("td", {}, v ?? "–")))));
  }
  onlyDiff.addEventListener("change", drawTable);
  drawTable();
  view.replaceChildren(el("h2", {}, "Compare"),
    el("div", { class: "panel" }, el("h3", {}, "Final results"), el("div", { class: "table-scroll" }, resultsTable(runs, summaries))),
    el("div", { class: "panel timeline", id: "compare-timeline-bar" }, alignSel, cursor, slider), heads, rowsBox,
    el("div", { class: "panel" }, el("h3", {}, "Curves"), curves),
    el("div", { class: "panel" }, el("h3", {}, "Config "), el("label", {}, onlyDiff, " only differences"), el("div", { class: "table-scroll" }, table)));

  const xOf = (run, step) => (alignSel.value === "step" ? step : step / Math.max(run.total_steps, 1));
  const charts = {}; // group id → plot div
  let cursorX = null; // the shared timeline's position, on the curves' x axis
  function plot() {
    if (typeof Plotly === "undefined") return;
    const byGroup = {};
    runs.forEach((r, i) => {
      const names = [...new Set(frames[i].flatMap((f) => Object.keys(f.metrics ?? {})))];
      for (const n of names) {
        const g = groupOf(n);
        (byGroup[g.id] ||= { group: g, traces: [] }).traces.push({ x: frames[i].map((f) => xOf(r, f.step)),
          y: forAxis(frames[i].map((f) => f.metrics?.[n] ?? null), g.log), connectgaps: true,
          name: `${r.title} · ${n}`, mode: "lines", line: { color: metricColor(n), dash: RUN_DASHES[i], width: 1.6 } });
      }
    });
    for (const g of GROUPS) {
      const entry = byGroup[g.id];
      if (!entry) continue;
      if (!charts[g.id]) {
        charts[g.id] = el("div", { class: "curves", "data-group": g.id });
        curves.append(el("div", { class: "curve-chart", "data-curve-group": g.id }, charts[g.id]));
      }
      Plotly.react(charts[g.id], entry.traces, metricsLayout({ yTitle: g.label, log: g.log,
        xTitle: alignSel.value === "step" ? "step" : "fraction of training", cursor: cursorX,
        values: entry.traces.flatMap((t) => t.y) }), PLOT_CONFIG);
      charts[g.id].dataset.cursor = cursorX;
    }
  }
  // the timeline's position as a line over every chart; a scrub fires many inputs, the charts move
  // once per animation frame
  let cursorQueued = false;
  function moveCursor(x) {
    cursorX = x;
    if (cursorQueued || typeof Plotly === "undefined") return;
    cursorQueued = true;
    requestAnimationFrame(() => {
      cursorQueued = false;
      for (const div of Object.values(charts)) {
        Plotly.relayout(div, { shapes: cursorShapes(cursorX) });
        div.dataset.cursor = cursorX;
      }
    });
  }
  const maxX = () => Math.max(...runs.map((r, i) => xOf(r, frames[i].at(-1)?.step ?? 0)), 1e-9);
  const cache = runs.map(() => new Map()); // step → panels, per run
  let token = 0;
  async function show() {
    const t = ++token;
    const x = (+slider.value / 1000) * maxX();
    cursor.textContent = alignSel.value === "step" ? `step ${Math.round(x)}` : `${(100 * x).toFixed(1)}% of training`;
    moveCursor(x);
    const panels = await Promise.all(runs.map(async (r, i) => {
      const at = frames[i].filter((f) => xOf(r, f.step) <= x + 1e-12).at(-1) ?? frames[i][0];
      if (!at) return null;
      if (!cache[i].has(at.step)) {
        const page = await api.frames(r.id, { from_step: at.step, to_step: at.step, limit: 1 });
        if (cache[i].size > 16) cache[i].delete(cache[i].keys().next().value);
        cache[i].set(at.step, page.frames[0]?.panels ?? {});
      }
      return { step: at.step, time: at.time, panels: cache[i].get(at.step) };
    }));
    if (t !== token) return; // a newer position won
    runs.forEach((r, i) => {
      const label = view.querySelector(`[data-step-of="${r.id}"]`);
      const f = panels[i];
      label.textContent = f ? `step ${f.step} / ${r.total_steps}` : "no frames yet";
      for (const [kind, payload] of Object.entries(f?.panels ?? {})) rowFor(kind)?.boxes[i].render({ ...payload, step: f.step, time: f.time });
      for (const [kind, row] of Object.entries(rows)) { // a kind this run's model does not have: said, not an empty frame
        if (!f?.panels?.[kind]) row.boxes[i].absent(`${r.title} has no ${RENDERERS[kind].title.toLowerCase()}: not defined for its model.`);
      }
    });
    view.dataset.cursor = slider.value;
  }
  alignSel.addEventListener("change", () => { cursorX = (+slider.value / 1000) * maxX(); plot(); show(); });
  slider.addEventListener("input", show);
  cursorX = (+slider.value / 1000) * maxX();
  plot();
  await show();
  return { close() { for (const r of Object.values(rows)) for (const b of r.boxes) b.close(); } };
}

export async function comparePage(view, spec) {
  const ids = (spec ?? "").split(",").filter((s) => /^[0-9a-f]{32}$/.test(s));
  if (ids.length < 2) return picker(view);
  return compare(view, ids.slice(0, 4));
}
