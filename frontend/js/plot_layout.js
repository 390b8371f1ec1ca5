// One Plotly look for every chart of metrics (the run page's curves, the compare page, the HTML
// export): which metrics share a chart, one colour per metric name everywhere, the layout (theme
// colours, margins that keep tick labels clear of the toolbar, an axis title that says its scale),
// and the values a log axis can show.

// 24 colours told apart on white and on the dark theme (after Kelly's list of maximum contrast).
export const PALETTE = ["#3b5bdb", "#e8590c", "#2b8a3e", "#c2255c", "#7048e8", "#0c8599", "#b08900", "#862e9c",
  "#d9480f", "#5c940d", "#1098ad", "#e64980", "#495057", "#f59f00", "#364fc7", "#a61e4d", "#2f9e44", "#9c36b5",
  "#74b816", "#1864ab", "#c92a2a", "#087f5b", "#d6336c", "#8c6d1f"];

// Metric names the models log get a colour slot each (no two in a family share a colour: LISTA
// logs twelve series); any other name (a user's own code) is hashed onto the palette.
const KNOWN = ["loss", "reconstruction", "active_fraction", "sparsity", "l1", "group_sparsity", "inhibition",
  "encoder_loss", "energy_lista", "energy_fista_ref", "heldout_energy_lista_T", "heldout_energy_fista_T",
  "heldout_energy_ista_T", "heldout_energy_optimum", "lista_excess_over_optimum", "fista_excess_over_optimum",
  "test_error", "train_error", "cross_entropy", "lr", "probe_pixels", "probe_layer1", "probe_layer2", "probe_all_layers"];

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
export const GROUPS = [LOSS, RATES, SCHEDULE];
const MATCH = [SCHEDULE, RATES, LOSS];
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

// The layout of a metrics chart. `log`: the y axis's scale, said in its title too.
export function metricsLayout({ yTitle, log, xTitle = "step", cursor = null, height = null }) {
  const { fg, grid } = themeColours();
  return {
    paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)", font: { color: fg, size: 12 },
    // the top margin holds Plotly's toolbar, so it never sits on the tick labels
    margin: { t: 34, r: 16, b: 30, l: 64 }, ...(height ? { height } : {}),
    xaxis: { title: { text: xTitle }, gridcolor: grid, zeroline: false, automargin: true },
    yaxis: {
      title: { text: `${yTitle} (${log ? "log" : "linear"} axis)` }, type: log ? "log" : "linear", gridcolor: grid,
      automargin: true, zeroline: false,
      // full numbers at every tick (no "5 2 100 5 2" digit labels between the decades)
      tickformat: log ? "~g" : "", exponentformat: "e", nticks: 7,
    },
    legend: { orientation: "h", x: 0, y: -0.3, yanchor: "top", font: { size: 11 } },
    showlegend: true, uirevision: "keep", shapes: cursorShapes(cursor),
  };
}

export function cursorShapes(x) {
  return x == null ? [] : [{ type: "line", xref: "x", yref: "paper", x0: x, x1: x, y0: 0, y1: 1,
    line: { color: "#e8590c", width: 1.5, dash: "dot" } }];
}

export const PLOT_CONFIG = { displaylogo: false, responsive: true, modeBarButtonsToRemove: ["lasso2d", "select2d"] };
