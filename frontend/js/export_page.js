// The HTML export's page (GET /api/runs/{id}/export.html, one file that opens offline): the run
// page read-only — Results card, a timeline over the frames the file carries, every panel of the
// run drawn by the same renderers, the curves with the same layout and colours, notes, record and
// config. backend/app/js_bundle.py inlines this module with everything it imports; the data is the
// JSON in <script id="data"> (backend/app/html_export.py).
import { el } from "./dom.js";
import { Curves } from "./curves.js";
import { PanelBox } from "./panel_box.js";
import { RENDERERS } from "./panels/index.js";
import { ResultsCard } from "./results_card.js";

const D = JSON.parse(document.getElementById("data").textContent);
const view = document.getElementById("view");

function header(rec) {
  const tags = el("div", { id: "tags" }, ...(rec.tags ?? []).map((t) => el("span", { class: "tag" }, t)));
  return el("div", { class: "run-head" }, el("h2", { id: "title" }, rec.title),
    el("span", { class: `status ${rec.status}`, id: "run-status" }, rec.status),
    el("span", { id: "run-step" }, `step ${rec.step} / ${rec.total_steps}`),
    el("span", { class: "muted", id: "meta" }, `exported ${D.exported_at} · ${D.frames.length} of ${D.frame_count} frames with panels`), tags);
}

function recordTable(rec) {
  const prov = rec.provenance ?? {}, env = D.environment ?? {};
  const rows = { "launched by": rec.launched_by, seed: prov.seed ?? D.config?.train?.seed, code: JSON.stringify(prov.code ?? env.code),
    torch: env.torch, CUDA: env.cuda, device: env.device, started: rec.started_at, finished: rec.finished_at,
    preset: rec.preset, "run id": rec.id };
  return el("table", { class: "record", id: "record" },
    ...Object.entries(rows).map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", {}, v ?? "–"))));
}

function main() {
  const rec = D.record;
  const run = { ...rec, config: D.config };
  const results = new ResultsCard(run);
  const last = D.frames.at(-1);
  results.update({ metrics: rec.metrics, step: rec.step, panels: last?.panels, panelsStep: last?.step });

  const slider = el("input", { type: "range", id: "timeline", min: 0, max: Math.max(D.frames.length - 1, 0), value: 0 });
  const cursor = el("span", { class: "muted", id: "cursor-step" }, "–");
  const step = (d) => () => show(index + d);
  const back = el("button", { id: "step-back", title: "step back (←)" }, "◀");
  const fwd = el("button", { id: "step-forward", title: "step forward (→)" }, "▶|");
  back.addEventListener("click", step(-1));
  fwd.addEventListener("click", step(1));
  slider.addEventListener("input", () => show(+slider.value));
  const timeline = el("div", { class: "timeline panel", id: "timeline-bar" }, back, fwd, cursor, slider);

  const grid = el("div", { class: "panel-grid" });
  const curvesBox = el("div", { class: "panel curves-panel" });
  const curvesHead = el("div", { class: "panel-head" }, el("h3", {}, "Curves"));
  curvesBox.append(curvesHead);
  grid.append(curvesBox);
  const notes = el("div", { id: "notes", class: "notes" });
  notes.innerHTML = document.getElementById("notes-html").innerHTML; // sanitised by the server
  const config = el("pre", { id: "config", class: "panel" }, JSON.stringify(D.config, null, 2));
  view.replaceChildren(header(rec), results.root, timeline, grid,
    el("h3", {}, "Notes"), notes, el("h3", {}, "Record"), recordTable(rec), el("h3", {}, "Config"), config);

  const curves = new Curves(curvesBox);
  curvesHead.append(curves.controls);
  const names = Object.keys(D.metrics).filter((n) => n !== "step");
  curves.append(D.metrics.step.map((s, i) => ({ step: s, metrics: Object.fromEntries(names
    .filter((n) => D.metrics[n][i] != null).map((n) => [n, D.metrics[n][i]])) })));

  const boxes = {};
  let index = 0;
  function show(i) {
    if (!D.frames.length) return;
    index = Math.max(0, Math.min(D.frames.length - 1, i));
    const f = D.frames[index];
    slider.value = index;
    cursor.textContent = `step ${f.step} (${index + 1}/${D.frames.length})`;
    view.dataset.cursorStep = f.step;
    curves.setCursor(f.step);
    for (const [kind, payload] of Object.entries(f.panels ?? {})) {
      if (!RENDERERS[kind]) continue;
      if (!boxes[kind]) { boxes[kind] = new PanelBox(kind, RENDERERS[kind]); grid.append(boxes[kind].root); }
      boxes[kind].render({ ...payload, step: f.step, time: f.time });
    }
  }
  document.addEventListener("keydown", (ev) => {
    if (ev.target?.tagName === "INPUT" && ev.target.type !== "range") return;
    const moves = { ArrowLeft: -1, ArrowRight: 1 };
    if (ev.key in moves) { ev.preventDefault(); show(index + moves[ev.key] * (ev.shiftKey ? 10 : 1)); }
    else if (ev.key === "Home") show(0);
    else if (ev.key === "End") show(D.frames.length - 1);
  });
  show(D.frames.length - 1);
  document.body.dataset.ready = "1";
}

main();
