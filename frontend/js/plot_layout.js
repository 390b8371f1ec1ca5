// One Plotly look for every chart of metrics (the run page's curves, the compare page, the HTML
// export): which metrics share a chart, one colour per metric name everywhere, the layout (theme
// colours, margins that keep tick labels clear of the toolbar, an axis title that says its scale),
// and the values a log axis can show.

// 32 colours told apart on white and on the dark theme: hues a golden angle apart (neighbouring
// slots differ most), two lightnesses alternating.
export const PALETTE = Array.from({ length: 32 }, (_, i) =>
  `hsl(${Math.round((220 + i * 137.508) % 360)}, ${i % 2 ? 62 : 72}%, ${i % 4 < 2 ? 45 : 56}%)`);

// Metric names the models log get a slot each (no two share a colour, whichever family logs them:
// LISTA logs eighteen series); any other name (a user's own code) is hashed onto the palette.
const KNOWN = ["loss", "reconstruction", "active_fraction", "sparsity", "l1", "group_sparsity", "inhibition",
  "encoder_loss", "energy_lista", "energy_fista_ref", "heldout_energy_lista_T", "heldout_energy_fista_T",
  "heldout_energy_ista_T", "heldout_energy_optimum", "lista_excess_over_optimum", "fista_excess_over_optimum",
  "test_error", "train_error", "cross_entropy", "lr", "probe_pixels", "probe_layer1", "probe_layer2", "probe_all_layers",
  "heldout_code_error_lista_T", "heldout_code_error_fista_T", "heldout_fista_iterations_energy",
  "heldout_fista_iterations_code", "heldout_iteration_ratio_energy", "heldout_iteration_ratio_code",
  "zero_group_fraction", "probe_layer3"];

function hash(name) { // FNV-1a, 32 bit
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

export function metricColor(name) {
  const k = KNOWN.indexOf(name);
  return PALETTE[(k >= 0 ? k : hash(name)) % PALETTE.length];
}

// Line styles for the runs of the compare page: the metric keeps its colour, the run its dash.
export const RUN_DASHES = ["solid", "dash", "dot", "dashdot"];

// Groups of comparable metrics, one chart each: energies and loss terms (positive, spanning decades:
// log by default), fractions/errors/accuracies (0…1: linear), the learning rate (its own scale).
// GROUPS is the charts' order on the page; a name goes to the first group (in MATCH order) whose test it passes.
const LOSS = { id: "loss", label: "loss terms and energies", log: true, test: () => true };
const RATES = { id: "rates", label: "fractions, errors, accuracies", log: false,
  test: (n) => /(fraction|share|rate$|error|accuracy|^probe_|excess|active)/i.test(n) };
const SCHEDULE = { id: "schedule", label: "learning rate", log: false, test: (n) => n === "lr" || /(^|_)lr$/.test(n) };
const COUNTS = { id: "counts", label: "iterations and ratios", log: false, test: (n) => /(iteration|ratio)/i.test(n) };
export const GROUPS = [LOSS, RATES, COUNTS, SCHEDULE];
const MATCH = [SCHEDULE, COUNTS, RATES, LOSS];
export const groupOf = (name) => MATCH.find((g) => g.test(name));

// A log axis cannot show 0 or a negative value: such a point becomes a gap (the line joins the
// positive points around it) instead of a spike down to the bottom of the chart.
export function forAxis(values, log) {
  return log ? values.map((v) => (v != null && v > 0 ? v : null)) : values;
}

// Exponential moving average (debiased, as TensorBoard's): weight in [0, 1), 0 = raw values.
export function smooth(values, weight) {
  if (!weight) return values.slice();
  let last = 0, n = 0;
  return values.map((v) => {
    if (v == null || !Number.isFinite(v)) return v;
    last = last * weight + (1 - weight) * v;
    n += 1;
    return last / (1 - weight ** n);
  });
}

function themeColours() {
  const css = typeof getComputedStyle === "function" ? getComputedStyle(document.documentElement) : null;
  const v = (name, fallback) => css?.getPropertyValue(name).trim() || fallback;
  return { fg: v("--fg", "#1d1d1f"), grid: v("--grid", "#e5e5ea") };
}

// Ticks of a log axis over `values`: full numbers, never a label at every digit of every decade.
// Over three decades or more: the powers of ten; one to three: 1, 2, 5 × 10ⁿ; less: Plotly's own.
export function logTicks(values) {
  const pos = values.filter((v) => v != null && v > 0);
  if (!pos.length) return {};
  const decades = Math.log10(Math.max(...pos) / Math.min(...pos));
  return decades >= 3 ? { dtick: 1 } : decades >= 1 ? { dtick: "D2" } : {};
}

// The layout of a metrics chart. `log`: the y axis's scale, said in its title too; `values`: the
// y values shown (a log axis picks its ticks from their range).
export function metricsLayout({ yTitle, log, xTitle = "step", cursor = null, height = null, values = [] }) {
  const { fg, grid } = themeColours();
  return {
    paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)", font: { color: fg, size: 12 },
    // the toolbar stands upright in the right margin and the legend sits above the plot: neither
    // covers a tick label or the axis titles
    margin: { t: 12, r: 40, b: 44, l: 64 }, ...(height ? { height } : {}),
    modebar: { orientation: "v", bgcolor: "rgba(0,0,0,0)", color: fg },
    xaxis: { title: { text: xTitle, standoff: 6 }, gridcolor: grid, zeroline: false, automargin: true },
    yaxis: {
      title: { text: `${log ? "log" : "linear"} axis: ${yTitle}` }, type: log ? "log" : "linear", gridcolor: grid,
      automargin: true, zeroline: false, exponentformat: "e",
      ...(log ? { tickformat: "~g", ...logTicks(values) } : { nticks: 7 }),
    },
    legend: { orientation: "h", x: 0, xanchor: "left", y: 1.02, yanchor: "bottom", font: { size: 11 } },
    showlegend: true, uirevision: "keep", shapes: cursorShapes(cursor),
  };
}

export function cursorShapes(x) {
  return x == null ? [] : [{ type: "line", xref: "x", yref: "paper", x0: x, x1: x, y0: 0, y1: 1,
    line: { color: "#e8590c", width: 1.5, dash: "dot" } }];
}

export const PLOT_CONFIG = { displaylogo: false, responsive: true, modeBarButtonsToRemove: ["lasso2d", "select2d"] };
