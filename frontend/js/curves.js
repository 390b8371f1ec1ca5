// Curves (Plotly): one chart per group of comparable metrics (plot_layout.js: loss terms and
// energies, fractions and errors, the learning rate), each with its own log/linear toggle and an
// axis title that says which; one colour per metric name everywhere; optional smoothing (an EMA);
// extended in place as frames arrive; a vertical line marks the timeline's cursor; CSV of every point.
import { el } from "./dom.js";
import { GROUPS, PLOT_CONFIG, forAxis, groupOf, logTicks, metricColor, metricsLayout, smooth } from "./plot_layout.js";

const LIVE_MS = 400;
export const SMOOTHING = [[0, "no smoothing"], [0.6, "smoothing 0.6"], [0.9, "smoothing 0.9"], [0.97, "smoothing 0.97"]];

export class Curves {
  constructor(container) {
    this.root = el("div", { class: "curve-set" });
    this.smoothing = 0;
    this.smoothSel = el("select", { id: "curves-smoothing", title: "an exponential moving average of each curve (the CSV keeps the raw values)" },
      ...SMOOTHING.map(([v, t]) => el("option", { value: v }, t)));
    this.smoothSel.addEventListener("change", () => { this.smoothing = +this.smoothSel.value; this.flush(); this.redraw(); });
    this.charts = new Map(); // group id → {group, box, div, names, log, ready}
    this.points = []; // [{step, wall_time, metrics}], metrics only: small even for long runs
    this.cursor = null;
    this.cursorQueued = false;
    this.pendingFrom = null; // index of the first point the charts have not drawn
    this.pendingFresh = new Set(); // charts with a new series since they were drawn
    this.flushTimer = null;
    container.append(this.root);
  }

  get controls() { return this.smoothSel; }

  chart(group) {
    if (this.charts.has(group.id)) return this.charts.get(group.id);
    const div = el("div", { class: "curves", "data-group": group.id });
    const toggle = el("button", { "data-scale-toggle": group.id, title: "switch this chart's y axis between log and linear" });
    const c = { group, div, toggle, names: [], log: group.log, ready: false };
    toggle.textContent = c.log ? "log" : "linear";
    toggle.addEventListener("click", () => {
      c.log = !c.log;
      toggle.textContent = c.log ? "log" : "linear";
      this.flush(); // live points waiting for the charts: drawn once, not again after this redraw
      this.draw(c);
    });
    // the timeline's cursor: a line over the plot, moved without a Plotly redraw (a scrub moves it
    // many times a second; a relayout of every chart each time is what made scrubbing slow)
    c.cursorEl = el("div", { class: "curve-cursor", hidden: "" });
    c.box = el("div", { class: "curve-chart", "data-curve-group": group.id },
      el("div", { class: "curve-head" }, el("span", { class: "muted" }, group.label), toggle),
      el("div", { class: "curve-stage" }, div, c.cursorEl));
    // charts in GROUPS order whatever order their metrics arrive in
    const after = GROUPS.slice(GROUPS.indexOf(group) + 1).map((g) => this.charts.get(g.id)?.box).find(Boolean);
    this.root.insertBefore(c.box, after ?? null);
    this.charts.set(group.id, c);
    return c;
  }

  traces(c) {
    const x = this.points.map((p) => p.step);
    return c.names.map((n) => ({
      x, y: forAxis(smooth(this.points.map((p) => p.metrics[n] ?? null), this.smoothing), c.log), name: n, mode: "lines",
      line: { color: metricColor(n), width: 1.6 }, connectgaps: true,
      hovertemplate: `${n} %{y:.4~g}<extra>step %{x}</extra>`,
    }));
  }

  draw(c) { // the whole chart (first draw, a scale switch, a new smoothing)
    if (typeof Plotly === "undefined") return;
    const traces = this.traces(c);
    const layout = metricsLayout({ yTitle: c.group.label, log: c.log, values: traces.flatMap((t) => t.y) });
    c.ticks = JSON.stringify(layout.yaxis.dtick ?? null);
    layout.uirevision = c.log ? "log" : "linear"; // a zoom is kept while frames arrive, not across a scale switch
    Plotly.react(c.div, traces, layout, PLOT_CONFIG);
    if (!c.ready) c.div.on?.("plotly_afterplot", () => this.placeCursor(c)); // zoom, pan, resize, new points
    c.ready = true;
    this.placeCursor(c);
    c.box.dataset.scale = c.log ? "log" : "linear";
  }

  redraw() { for (const c of this.charts.values()) this.draw(c); }

  // points: [{step, wall_time, metrics}] in step order. `defer`: live frames — the charts take the
  // new points together at most every LIVE_MS (a Plotly redraw per chart per frame kept a loaded
  // machine's page busy); the points (and the CSV) have them at once.
  append(points, { defer = false } = {}) {
    const pts = points.filter((p) => p.metrics && Object.keys(p.metrics).length);
    if (!pts.length) return;
    const before = this.points.length;
    for (const p of pts) this.points.push({ step: p.step, wall_time: p.wall_time, metrics: p.metrics });
    const fresh = new Set();
    for (const p of pts) for (const n of Object.keys(p.metrics)) {
      if (typeof p.metrics[n] !== "number" && p.metrics[n] !== null) continue;
      const c = this.chart(groupOf(n));
      if (!c.names.includes(n)) {
        c.names.push(n);
        fresh.add(c);
        c.box.classList.toggle("many", c.names.length > 4); // a chart of many series: the whole width
      }
    }
    this.pendingFrom = Math.min(this.pendingFrom ?? before, before);
    for (const c of fresh) this.pendingFresh.add(c);
    if (!defer) this.flush();
    else this.flushTimer ??= setTimeout(() => this.flush(), LIVE_MS);
  }

  flush() {
    clearTimeout(this.flushTimer);
    this.flushTimer = null;
    const before = this.pendingFrom, fresh = this.pendingFresh;
    this.pendingFrom = null;
    this.pendingFresh = new Set();
    if (before == null || typeof Plotly === "undefined") return;
    for (const c of this.charts.values()) {
      // a new metric (e.g. a held-out error every N frames), smoothing (each point depends on all
      // before it) or a first draw: the whole chart; otherwise the new points only
      if (!c.ready || fresh.has(c) || this.smoothing) { this.draw(c); continue; }
      const added = this.points.slice(before);
      Plotly.extendTraces(c.div, {
        x: c.names.map(() => added.map((p) => p.step)),
        y: c.names.map((n) => forAxis(added.map((p) => p.metrics[n] ?? null), c.log)),
      }, c.names.map((_, i) => i));
      // a log axis whose range now spans more (or fewer) decades gets the ticks for it
      if (c.log && JSON.stringify(logTicks(c.div.data.flatMap((t) => t.y)).dtick ?? null) !== c.ticks) this.draw(c);
    }
  }

  // drop every point from `step` on (a resumed attempt redoes them) and redraw what is left
  truncate(step) {
    const kept = this.points.filter((p) => p.step < step);
    if (kept.length === this.points.length) return;
    this.points = kept;
    this.pendingFrom = null;
    this.redraw();
  }

  // the timeline's step, drawn as a vertical line over every chart (coalesced to one move per
  // animation frame)
  setCursor(step, force = false) {
    if (step === this.cursor && !force) return;
    this.cursor = step;
    if (this.cursorQueued) return;
    this.cursorQueued = true;
    requestAnimationFrame(() => {
      this.cursorQueued = false;
      for (const c of this.charts.values()) this.placeCursor(c);
    });
  }

  placeCursor(c) {
    const xa = c.div._fullLayout?.xaxis, ya = c.div._fullLayout?.yaxis;
    const x = this.cursor == null || !xa ? NaN : xa._offset + xa.l2p(this.cursor);
    const inside = Number.isFinite(x) && x >= xa._offset - 0.5 && x <= xa._offset + xa._length + 0.5;
    c.cursorEl.hidden = !inside;
    if (!inside) return;
    c.cursorEl.style.left = `${x}px`;
    c.cursorEl.style.top = `${ya._offset}px`;
    c.cursorEl.style.height = `${ya._length}px`;
    c.box.dataset.cursor = this.cursor;
  }

  csv() {
    const names = [...new Set(this.points.flatMap((p) => Object.keys(p.metrics)))];
    const esc = (v) => (v == null ? "" : String(v));
    const rows = [["step", "wall_time", ...names].join(",")];
    for (const p of this.points) rows.push([p.step, esc(p.wall_time), ...names.map((n) => esc(p.metrics[n]))].join(","));
    return rows.join("\n") + "\n";
  }
}
