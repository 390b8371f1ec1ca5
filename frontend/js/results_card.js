// The Results card: what a run shows, stated with its numbers and what each number was measured on
// (held-out data, training batches, the learned weights). Torch-free and computed in the page from
// what the run already records: the latest metrics (GET /api/runs/{id} → metrics, the same values
// as the last frame's) and the panels of the run's last frame. Each model family states its own
// result; a run of an unknown kind (your own code through pinwheel.log) lists its latest metrics.
import { el } from "./dom.js";

// what each number was measured on
const BASIS = {
  test: (c) => { const n = c.data?.test_size ?? c.data?.heldout_size; return `held-out test split${n ? ` (${n} examples)` : ""}`; },
  train: () => "training batches (mean since the previous frame)",
  probeBatch: () => "fixed probe batch of training examples",
  weights: () => "learned filters (no data)",
  s: () => "learned S (no data)",
};
// the label beside each number: only the test split is held out
const BADGE = { test: "held-out", train: "training", probeBatch: "training", weights: "weights", s: "weights" };

const num = (v, digits = 3) => (v == null || !isFinite(v) ? "–" : Math.abs(v) >= 1000 || (Math.abs(v) < 1e-3 && v !== 0)
  ? (+v).toExponential(2) : (+v).toPrecision(digits).replace(/(\.\d*?)0+$/, "$1").replace(/\.$/, ""));
const pct = (v, digits = 1) => (v == null || !isFinite(v) ? "–" : `${(100 * v).toFixed(digits)}%`);

// A row: a number from the metrics (`metric`) or from a panel of the last frame (`panel`: "kind.field").
function metricRow(m, key, label, basis, show = num) {
  return { source: "metric", key, label, value: m[key], text: show(m[key]), basis };
}
function panelRow(panels, path, label, basis, show = num) {
  const [kind, ...field] = path.split(".");
  let v = panels?.[kind];
  for (const f of field) v = v?.[f];
  return { source: "panel", key: path, label, value: v, text: show(v), basis };
}
const present = (rows) => rows.filter((r) => r.value != null);

function topographic(m, panels, c) {
  const tm = panels?.topographic_map;
  if (!tm) return { rows: [], headline: null };
  const layout = tm.layout === "positions" ? "fields on the image" : `${tm.rows}×${tm.cols} grid`;
  return {
    headline: `Orientation map on the ${layout}: smoothness ${num(tm.smoothness)} (1 = neighbours agree, 0 = random), `
      + `${tm.n_pinwheels} pin-wheels, `
      + (tm.rho == null ? `density ρ not measured (${tm.rho_note ?? "no value"}).` : `density ρ ${num(tm.rho)} per Λ²${tm.rho_band == null ? "" : ` (${num(tm.rho_band)} on the map band-passed around Λ)`} (π ≈ 3.14 in cortex).`),
    rows: present([panelRow(panels, "topographic_map.smoothness", "map smoothness ⟨cos 2Δθ⟩", "weights"),
      panelRow(panels, "topographic_map.n_pinwheels", "pin-wheels", "weights", (v) => String(v)),
      panelRow(panels, "topographic_map.rho", "pin-wheel density ρ (per Λ²)", "weights"),
      panelRow(panels, "topographic_map.rho_band", "ρ on the map band-passed around Λ", "weights")]),
  };
}

function reconstructionRows(m) {
  return present([metricRow(m, "reconstruction", "reconstruction error ½‖x − x̂‖²", "train"),
    metricRow(m, "group_sparsity", "group sparsity Ω(z)", "train"), metricRow(m, "sparsity", "sparsity penalty", "train"),
    metricRow(m, "l1", "‖z‖₁", "train"), metricRow(m, "active_fraction", "active units", "train", pct),
    metricRow(m, "zero_group_fraction", "groups switched off", "train", pct)]);
}

const FAMILIES = {
  conv_stack(m, panels, c) {
    const probes = Object.keys(m).filter((k) => k.startsWith("probe_"));
    const name = (k) => k === "probe_pixels" ? "raw pixels" : k === "probe_all_layers" ? "all layers"
      : k.replace("probe_layer", "layer ");
    const rank = (k) => (k === "probe_pixels" ? -1 : k === "probe_all_layers" ? 1e6 : parseInt(k.replace("probe_layer", ""), 10) || 0);
    probes.sort((a, b) => rank(a) - rank(b)); // pixels, layer 1, layer 2, …, all layers
    const rows = probes.map((k) => metricRow(m, k, `linear probe on ${name(k)}: test accuracy`, "test", (v) => pct(v)));
    const features = probes.filter((k) => k !== "probe_pixels");
    const best = [...features].sort((a, b) => m[b] - m[a])[0];
    const every = c.model?.probe_every_steps;
    const headline = best
      ? `A linear probe on ${best === "probe_all_layers" ? "the features of all layers" : `${name(best)} features`} reaches ${pct(m[best])} test accuracy`
        + (m.probe_pixels != null ? ` (raw pixels ${pct(m.probe_pixels)}).` : ".")
      : `No probe has finished yet${every ? ` (one every ${every} steps)` : ""}.`;
    return { headline, rows: [...rows, ...present([metricRow(m, "reconstruction", "reconstruction error (current layer)", "train")])] };
  },

  lista(m, panels, c) {
    const t = c.model?.steps ?? "T";
    const e = (v) => num(v, 4); // energies differ in the third digit: four keep LISTA and FISTA apart
    // the energies are measured on the test split where the data has one, else on the fixed probe
    // batch, which is drawn from the training data (pinwheel/models/lista.py frame_metrics)
    const on = c.data?.test_size || c.data?.heldout_size ? "test" : "probeBatch";
    const rows = present([
      metricRow(m, "heldout_energy_lista_T", `LISTA energy after ${t} steps`, on, e),
      metricRow(m, "heldout_energy_fista_T", `FISTA energy after ${t} steps`, on, e),
      metricRow(m, "heldout_energy_ista_T", `ISTA energy after ${t} steps`, on, e),
      metricRow(m, "heldout_energy_optimum", "optimum (FISTA to convergence)", on, e),
      metricRow(m, "lista_excess_over_optimum", "LISTA above the optimum", on, pct),
      metricRow(m, "fista_excess_over_optimum", `FISTA-${t} above the optimum`, on, pct)]);
    const [l, f, o] = [m.heldout_energy_lista_T, m.heldout_energy_fista_T, m.heldout_energy_optimum];
    const headline = l == null ? "No energies measured yet."
      : `LISTA-${t} energy ${e(l)} vs FISTA-${t} ${e(f)}; optimum ${e(o)} — LISTA ${l <= f ? "beats" : "trails"} FISTA at equal iterations.`;
    return { headline, rows };
  },

  drsae(m, panels, c) {
    const u = panels?.drsae_units?.counts;
    const rows = present([metricRow(m, "test_error", "test error", "test", pct),
      metricRow(m, "train_error", "training error", "train", pct),
      metricRow(m, "reconstruction", "reconstruction error", "train"),
      panelRow(panels, "drsae_units.counts.categorical", "categorical units", "probeBatch", String),
      panelRow(panels, "drsae_units.counts.part", "part units", "probeBatch", String)]);
    const headline = m.test_error == null ? "No test error measured yet."
      : `Test error ${pct(m.test_error)} on held-out digits (training ${pct(m.train_error)})`
        + (u ? `; ${u.categorical} categorical and ${u.part} part units.` : ".");
    return { headline, rows };
  },

  group_sparse(m, panels, c) {
    const map = topographic(m, panels, c);
    const g = c.model?.groups?.kind ?? "groups";
    const headline = map.headline ?? `Reconstruction error ${num(m.reconstruction)} with ${pct(m.active_fraction)} of units active (${g} groups, training batches).`;
    return { headline, rows: [...map.rows, ...reconstructionRows(m)] };
  },

  local_filters(m, panels, c) { return FAMILIES.group_sparse(m, panels, c); },

  lateral(m, panels, c) {
    const s = panels?.interaction_matrix ? "interaction_matrix" : "tree_inhibition.matrix";
    const map = topographic(m, panels, c);
    const br = panels?.tree_inhibition?.branch;
    const branchRows = present([panelRow(panels, "tree_inhibition.branch.ratio", br
      ? `filter |cos| within / across branch, ratio (${num(br.within)} / ${num(br.across)}; relabelled at random ${num(br.relabelled_mean)} ± ${num(br.relabelled_std)})`
      : "filter |cos| within / across branch, ratio", "weights")]);
    const sRows = present([panelRow(panels, `${s}.nonzero_share`, "off-diagonal entries of S non-zero", "s", pct),
      panelRow(panels, `${s}.scale`, "largest inhibition S_ij", "s"),
      metricRow(m, "inhibition", "inhibition |z|ᵀS|z|", "train")]);
    const mask = c.model?.mask?.kind ?? "structural";
    const nz = sRows.find((r) => r.key.endsWith("nonzero_share"));
    const headline = `Reconstruction error ${num(m.reconstruction)} with ${pct(m.active_fraction)} of units active; `
      + (nz ? `S (${mask} mask) has ${nz.text} of its off-diagonal entries non-zero.` : `S learned under a ${mask} mask.`)
      + (br ? ` Filters on one branch are ${num(br.ratio)}× as alike (|cos|) as filters on different branches`
        + ` (${num(br.relabelled_mean)}× with the filters relabelled at random).` : "")
      + (map.headline ? ` ${map.headline}` : "");
    return { headline, rows: [...map.rows, ...branchRows, ...sRows, ...reconstructionRows(m)] };
  },
};

function generic(m) {
  const keys = Object.keys(m).filter((k) => typeof m[k] === "number").slice(0, 8);
  return { headline: keys.length ? `Latest: ${keys.slice(0, 3).map((k) => `${k} ${num(m[k])}`).join(" · ")}.` : "No metrics yet.",
    rows: keys.map((k) => metricRow(m, k, k, "logged")) };
}

// {family, headline, rows: [{source, key, label, value, text, basis, heldOut}]}
export function summarise(run, metrics, panels) {
  const c = run.config ?? {};
  const family = c.model?.kind;
  const m = metrics ?? {};
  const out = (FAMILIES[family] ?? generic)(m, panels, c);
  const rows = out.rows.map((r) => ({ ...r, badge: BADGE[r.basis] ?? "logged", heldOut: r.basis === "test",
    basis: BASIS[r.basis]?.(c) ?? "as logged by the run" }));
  return { family: family ?? "external", headline: out.headline, rows };
}

// One line for the run list, from the metrics alone (the list has no panels).
export function resultLine(run) {
  const { headline, rows } = summarise(run, run.metrics, null);
  return { text: headline, title: rows.map((r) => `${r.label}: ${r.text} (${r.basis})`).join("\n") };
}

// The card on the run page; update() with the latest metrics and, when known, the last frame's panels.
export class ResultsCard {
  constructor(run) {
    this.run = run;
    this.panels = null;
    this.headline = el("p", { class: "results-headline", id: "results-headline" });
    this.table = el("table", { class: "results-table" });
    this.stepEl = el("span", { class: "muted", id: "results-step" });
    this.root = el("section", { class: "panel results-card", id: "results-card" },
      el("div", { class: "panel-head" }, el("h3", {}, "Results"), this.stepEl), this.headline, this.table);
  }

  update({ metrics, panels, step, panelsStep }) {
    if (metrics) { this.metrics = metrics; this.step = step; }
    if (panels) { this.panels = panels; this.panelsStep = panelsStep; }
    const s = summarise(this.run, this.metrics, this.panels);
    this.root.dataset.family = s.family;
    this.root.dataset.step = this.step ?? "";
    this.root.dataset.panelsStep = this.panelsStep ?? "";
    this.stepEl.textContent = this.step != null ? `latest frame, step ${this.step}` : "no frames yet";
    this.headline.textContent = s.headline;
    this.table.replaceChildren(...s.rows.map((r) => el("tr", { "data-source": r.source, "data-key": r.key, "data-value": r.value },
      el("th", {}, r.label), el("td", { class: "num" }, r.text),
      el("td", {}, el("span", { class: `badge ${r.badge}`, "data-badge": r.badge }, r.badge),
        " ", el("span", { class: "muted" }, r.basis)))));
  }
}
