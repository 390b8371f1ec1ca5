// Curves (Plotly): one trace per scalar metric — every loss term on a log axis, fractions and rates
// on a linear right-hand axis — extended in place; a vertical line marks the timeline's cursor;
// CSV export of every point.

const RIGHT_AXIS = /(fraction|share|rate|error|accuracy|lr|active)/i;

export class Curves {
  constructor(container) {
    this.div = document.createElement("div");
    this.div.className = "curves";
    this.div.style.height = "340px";
    container.append(this.div);
    this.names = [];
    this.points = []; // [{step, wall_time, metrics}], metrics only: small even for long runs
    this.ready = false;
    this.cursor = null;
    this.cursorQueued = false;
  }

  _init(names) {
    this.names = names;
    const traces = names.map((n) => ({ x: [], y: [], name: n, mode: "lines", yaxis: RIGHT_AXIS.test(n) ? "y2" : "y" }));
    // colours from the page's CSS variables: readable on the light and the dark theme alike
    const css = getComputedStyle(document.documentElement);
    const v = (name, fallback) => css.getPropertyValue(name).trim() || fallback;
    const grid = v("--grid", "#e5e5ea");
    Plotly.newPlot(this.div, traces, {
      paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)", font: { color: v("--fg", "#1d1d1f") },
      margin: { t: 10, r: 50, b: 40, l: 55 }, xaxis: { title: { text: "step" }, gridcolor: grid },
      yaxis: { title: { text: "loss terms" }, type: "log", gridcolor: grid },
      // ticks of its own: an axis overlaying a log axis otherwise gets ticks at the log axis's places
      yaxis2: { title: { text: "fractions / rates" }, type: "linear", tickmode: "auto", nticks: 6, overlaying: "y",
                side: "right", showgrid: false },
      legend: { orientation: "h", y: -0.2 }, uirevision: "keep", shapes: [],
    }, { displaylogo: false, responsive: true });
    this.ready = true;
  }

  // points: [{step, wall_time, metrics}] in step order
  append(points) {
    const pts = points.filter((p) => p.metrics && Object.keys(p.metrics).length);
    if (!pts.length) return;
    for (const p of pts) this.points.push({ step: p.step, wall_time: p.wall_time, metrics: p.metrics });
    if (typeof Plotly === "undefined") return;
    if (!this.ready) this._init(Object.keys(pts[0].metrics));
    const fresh = [...new Set(pts.flatMap((p) => Object.keys(p.metrics)))].filter((n) => !this.names.includes(n));
    if (fresh.length) { // a metric that appears later (e.g. a held-out error every N frames)
      Plotly.addTraces(this.div, fresh.map((n) => ({ x: [], y: [], name: n, mode: "lines", yaxis: RIGHT_AXIS.test(n) ? "y2" : "y" })));
      this.names.push(...fresh);
    }
    const xs = this.names.map(() => []);
    const ys = this.names.map(() => []);
    for (const p of pts) {
      this.names.forEach((n, i) => { xs[i].push(p.step); ys[i].push(p.metrics[n] ?? null); });
    }
    Plotly.extendTraces(this.div, { x: xs, y: ys }, this.names.map((_, i) => i));
    if (this.cursor != null) this.setCursor(this.cursor, true);
  }

  // drop every point from `step` on (a resumed attempt redoes them) and redraw what is left
  truncate(step) {
    const kept = this.points.filter((p) => p.step < step);
    if (kept.length === this.points.length) return;
    this.points = [];
    if (this.ready) Plotly.purge(this.div);
    this.ready = false;
    this.names = [];
    this.append(kept);
  }

  // the timeline's step, drawn as a vertical line (coalesced to one relayout per animation frame)
  setCursor(step, force = false) {
    if (step === this.cursor && !force) return;
    this.cursor = step;
    if (!this.ready || this.cursorQueued) return;
    this.cursorQueued = true;
    requestAnimationFrame(() => {
      this.cursorQueued = false;
      Plotly.relayout(this.div, { shapes: [{ type: "line", xref: "x", yref: "paper", x0: this.cursor, x1: this.cursor,
        y0: 0, y1: 1, line: { color: "#e8590c", width: 1.5, dash: "dot" } }] });
    });
  }

  csv() {
    const names = [...new Set(this.points.flatMap((p) => Object.keys(p.metrics)))];
    const esc = (v) => (v == null ? "" : String(v));
    const rows = [["step", "wall_time", ...names].join(",")];
    for (const p of this.points) rows.push([p.step, esc(p.wall_time), ...names.map((n) => esc(p.metrics[n]))].join(","));
    return rows.join("\n") + "\n";
  }
}
