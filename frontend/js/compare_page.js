// Compare 2–4 runs: a picker (`#/compare`), then (`#/compare/<id>,<id>…`) one shared timeline
// (by step or by fraction of training) driving a filter panel per run side by side, every run's
// curves overlaid, and the config keys that differ highlighted.
import { api, el } from "./api.js";

const COLORS = ["#3b5bdb", "#e8590c", "#2b8a3e", "#ae3ec9"];

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

async function compare(view, ids) {
  const runs = await Promise.all(ids.map((id) => api.run(id)));
  const frames = await Promise.all(ids.map(history));
  const alignSel = el("select", { id: "compare-align" }, el("option", { value: "step" }, "align by step"),
    el("option", { value: "fraction" }, "align by fraction of training"));
  const slider = el("input", { type: "range", id: "compare-timeline", min: 0, max: 1000, value: 1000, style: "flex:1" });
  const cursor = el("span", { class: "muted", id: "compare-cursor" });
  const cols = runs.map((r, i) => {
    const img = el("img", { class: "atlas", "data-run": r.id, alt: "filters", style: "width:100%;image-rendering:pixelated" });
    const label = el("div", { class: "muted", "data-step-of": r.id });
    return { run: r, img, label, box: el("div", { class: "panel compare-col" },
      el("h3", { style: `color:${COLORS[i]}` }, el("a", { href: `#/runs/${r.id}` }, r.title)), label, img) };
  });
  const curves = el("div", { id: "compare-curves", style: "height:380px" });
  const diff = configDiff(runs.map((r) => r.config));
  const onlyDiff = el("input", { type: "checkbox", id: "only-diff", checked: "" });
  const table = el("table", { class: "config-diff", id: "config-diff" });
  function drawTable() {
    const rows = diff.filter((d) => d.differs || !onlyDiff.checked);
    table.replaceChildren(el("tr", {}, el("th", {}, "config"), ...runs.map((r, i) => el("th", { style: `color:${COLORS[i]}` }, r.title))),
      ...rows.map((d) => el("tr", { class: d.differs ? "diff" : "" }, el("td", {}, d.key), ...d.values.map((v) => el("td", {}, v ?? "–")))));
  }
  onlyDiff.addEventListener("change", drawTable);
  drawTable();
  view.replaceChildren(el("h2", {}, "Compare"),
    el("div", { class: "panel", style: "display:flex;gap:1em;align-items:center;margin-bottom:1em" }, alignSel, cursor, slider),
    el("div", { class: "compare-grid", style: `display:grid;grid-template-columns:repeat(${runs.length},1fr);gap:1em` }, ...cols.map((c) => c.box)),
    el("div", { class: "panel" }, el("h3", {}, "Curves"), curves),
    el("div", { class: "panel" }, el("h3", {}, "Config "), el("label", {}, onlyDiff, " only differences"), table));

  const xOf = (run, step) => (alignSel.value === "step" ? step : step / Math.max(run.total_steps, 1));
  function plot() {
    if (typeof Plotly === "undefined") return;
    const traces = [];
    runs.forEach((r, i) => {
      const names = [...new Set(frames[i].flatMap((f) => Object.keys(f.metrics ?? {})))];
      for (const n of names) {
        traces.push({ x: frames[i].map((f) => xOf(r, f.step)), y: frames[i].map((f) => f.metrics?.[n] ?? null),
          name: `${r.title} · ${n}`, mode: "lines", line: { color: COLORS[i], dash: n === "loss" ? "solid" : "dot" },
          visible: n === "loss" ? true : "legendonly" });
      }
    });
    Plotly.react(curves, traces, { margin: { t: 10, r: 20, b: 40, l: 55 }, yaxis: { type: "log" },
      xaxis: { title: { text: alignSel.value === "step" ? "step" : "fraction of training" } },
      legend: { orientation: "h", y: -0.2 } }, { displaylogo: false, responsive: true });
  }
  const maxX = () => Math.max(...runs.map((r, i) => xOf(r, frames[i].at(-1)?.step ?? 0)), 1e-9);
  let token = 0;
  async function show() {
    const t = ++token;
    const x = (+slider.value / 1000) * maxX();
    cursor.textContent = alignSel.value === "step" ? `step ${Math.round(x)}` : `${(100 * x).toFixed(1)}% of training`;
    await Promise.all(cols.map(async (c, i) => {
      const at = frames[i].filter((f) => xOf(c.run, f.step) <= x + 1e-12).at(-1) ?? frames[i][0];
      if (!at) { c.label.textContent = "no frames yet"; return; }
      const page = await api.frames(c.run.id, { from_step: at.step, to_step: at.step, limit: 1 });
      const png = page.frames[0]?.panels?.filter_grid?.atlas_png;
      if (t !== token) return;
      c.label.textContent = `step ${at.step} / ${c.run.total_steps}`;
      if (png) { c.img.src = `data:image/png;base64,${png}`; c.img.dataset.step = at.step; }
    }));
  }
  alignSel.addEventListener("change", () => { plot(); show(); });
  slider.addEventListener("input", show);
  plot();
  await show();
  return { close() {} };
}

export async function comparePage(view, spec) {
  const ids = (spec ?? "").split(",").filter((s) => /^[0-9a-f]{32}$/.test(s));
  if (ids.length < 2) return picker(view);
  return compare(view, ids.slice(0, 4));
}
