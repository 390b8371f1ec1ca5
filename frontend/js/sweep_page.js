// A sweep's page (`#/sweeps/<id>`): every run's swept values, status and latest metrics in a table
// sortable by any column, a Plotly parallel-coordinates plot of the values against a chosen
// metric, "Compare selected" (the compare page: panels side by side on one timeline) and
// "Cancel sweep". Refreshed every few seconds while runs are active.
import { el } from "./dom.js";
import { isActive } from "./statuses.js";
import { bearer } from "./auth.js";

const REFRESH_MS = 3000;

async function call(method, path) {
  const res = await fetch(path, { method, headers: { Authorization: `Bearer ${bearer()}` } });
  const data = await res.json();
  if (!res.ok) throw new Error(typeof data.detail === "string" ? data.detail : JSON.stringify(data.detail));
  return data;
}

function fmt(v) {
  if (typeof v !== "number") return v == null ? "–" : String(v);
  return Number.isInteger(v) ? String(v) : v.toPrecision(4);
}

// Columns: run, status, step, each swept field, each metric. value(run) is what sorts and what
// the cell's data-value holds (the raw number, so a test can compare it with the API's).
function columns(sweep) {
  const metrics = [...new Set(sweep.runs.flatMap((r) => Object.keys(r.metrics)))].sort();
  return [
    { key: "run", label: "run", value: (r) => r.id },
    { key: "status", label: "status", value: (r) => r.status },
    { key: "step", label: "step", value: (r) => r.step },
    ...sweep.fields.map((f) => ({ key: `param:${f}`, label: f, value: (r) => r.params[f] ?? null })),
    ...metrics.map((m) => ({ key: `metric:${m}`, label: m, value: (r) => r.metrics[m] ?? null })),
  ];
}

function compare(a, b) {
  if (a === b) return 0;
  if (a == null) return 1;
  if (b == null) return -1;
  return typeof a === "number" && typeof b === "number" ? a - b : String(a).localeCompare(String(b));
}

export async function sweepPage(view, id) {
  let sweep = await call("GET", `/api/sweeps/${id}`);
  let sort = { key: "run-index", dir: 1 };
  const chosen = new Set();
  const title = el("h2", {}, sweep.title || `sweep ${id}`);
  const counts = el("span", { class: "meta", id: "sweep-counts" });
  const cancelBtn = el("button", { class: "danger", id: "sweep-cancel" }, "Cancel sweep");
  const compareBtn = el("button", { id: "sweep-compare", disabled: "" }, "Compare selected");
  const metricSel = el("select", { id: "sweep-metric", title: "the metric on the plot's last axis" });
  const table = el("table", { class: "sweep-table", id: "sweep-table" });
  const plot = el("div", { id: "sweep-parcoords", style: "height:360px" });
  const error = el("div", { class: "error" });
  view.replaceChildren(el("div", { class: "run-head" }, title, counts, cancelBtn, compareBtn),
    error, el("div", { class: "panel" }, el("div", { class: "panel-head" }, el("h3", {}, "Runs"),
      el("span", { class: "muted" }, "click a header to sort · tick runs to compare")), table),
    el("div", { class: "panel" }, el("div", { class: "panel-head" }, el("h3", {}, "Parallel coordinates"), metricSel), plot));

  cancelBtn.addEventListener("click", async () => {
    cancelBtn.disabled = true;
    try { sweep = await call("POST", `/api/sweeps/${id}/cancel`); draw(); } catch (e) { error.textContent = e.message; }
  });
  compareBtn.addEventListener("click", () => { location.hash = `#/compare/${[...chosen].join(",")}`; });
  metricSel.addEventListener("change", () => drawPlot());

  function drawTable() {
    const cols = columns(sweep);
    const rows = sweep.runs.map((r, i) => ({ r, i }));
    if (sort.key !== "run-index") {
      const col = cols.find((c) => c.key === sort.key);
      if (col) rows.sort((a, b) => sort.dir * compare(col.value(a.r), col.value(b.r)));
    }
    const head = el("tr", {}, el("th", {}, ""), ...cols.map((c) => {
      const th = el("th", { "data-key": c.key, class: "sortable" },
        c.label + (sort.key === c.key ? (sort.dir > 0 ? " ▲" : " ▼") : ""));
      th.addEventListener("click", () => { sort = { key: c.key, dir: sort.key === c.key ? -sort.dir : 1 }; drawTable(); });
      return th;
    }));
    const body = rows.map(({ r }) => {
      const box = el("input", { type: "checkbox", "data-run": r.id, ...(chosen.has(r.id) ? { checked: "" } : {}) });
      box.addEventListener("change", () => {
        if (box.checked && chosen.size >= 4) { box.checked = false; return; } // the compare page takes 2-4 runs
        box.checked ? chosen.add(r.id) : chosen.delete(r.id);
        compareBtn.disabled = chosen.size < 2;
      });
      return el("tr", { "data-run": r.id }, el("td", {}, box), ...cols.map((c) => {
        const v = c.value(r);
        const text = c.key === "run" ? el("a", { href: `#/runs/${r.id}` }, r.id.slice(0, 8)) : fmt(v);
        return el("td", { "data-key": c.key, "data-value": JSON.stringify(v), class: c.key === "status" ? `status ${v}` : "" }, text);
      }));
    });
    table.replaceChildren(el("thead", {}, head), el("tbody", {}, ...body));
  }

  function drawPlot() {
    const metrics = [...new Set(sweep.runs.flatMap((r) => Object.keys(r.metrics)))].sort();
    const keep = metricSel.value || (metrics.includes("loss") ? "loss" : metrics[0]);
    metricSel.replaceChildren(...metrics.map((m) => el("option", { value: m, ...(m === keep ? { selected: "" } : {}) }, m)));
    if (typeof Plotly === "undefined" || !keep) return;
    const dims = sweep.fields.map((f) => {
      const vals = sweep.runs.map((r) => r.params[f]);
      if (vals.every((v) => typeof v === "number")) return { label: f, values: vals };
      const cats = [...new Set(vals.map(String))]; // non-numbers: one tick per distinct value
      return { label: f, values: vals.map((v) => cats.indexOf(String(v))), tickvals: cats.map((_, i) => i), ticktext: cats };
    });
    const score = sweep.runs.map((r) => r.metrics[keep] ?? null);
    dims.push({ label: keep, values: score });
    Plotly.react(plot, [{ type: "parcoords", dimensions: dims,
      line: { color: score.map((v) => v ?? 0), colorscale: "Viridis", showscale: true } }],
      { margin: { t: 40, r: 60, b: 20, l: 60 } }, { displaylogo: false, responsive: true });
  }

  function draw() {
    const c = sweep.counts;
    counts.textContent = Object.entries(c).map(([k, v]) => `${v} ${k}`).join(" · ");
    cancelBtn.disabled = !sweep.runs.some((r) => isActive(r.status));
    drawTable();
    drawPlot();
    view.dataset.sweepDrawn = String(Date.now()); // tests wait on a fresh draw
  }

  draw();
  const timer = setInterval(async () => {
    if (!sweep.runs.some((r) => isActive(r.status))) return;
    try { sweep = await call("GET", `/api/sweeps/${id}`); draw(); } catch (e) { error.textContent = e.message; }
  }, REFRESH_MS);
  return { close() { clearInterval(timer); } };
}
