// Live loss curves (Plotly): one trace per scalar metric, appended in place with extendTraces.
export class Curves {
  constructor(container) {
    this.div = document.createElement("div");
    this.div.className = "curves";
    this.div.style.height = "340px";
    container.append(this.div);
    this.names = [];
    this.ready = false;
  }

  _init(names) {
    this.names = names;
    const traces = names.map((n) => ({ x: [], y: [], name: n, mode: "lines", yaxis: n === "loss" ? "y" : "y2",
                                      visible: n === "loss" || n === "reconstruction" ? true : "legendonly" }));
    Plotly.newPlot(this.div, traces, {
      margin: { t: 10, r: 50, b: 40, l: 55 }, xaxis: { title: { text: "step" } },
      yaxis: { title: { text: "loss" }, type: "log" }, yaxis2: { overlaying: "y", side: "right", showgrid: false },
      legend: { orientation: "h", y: -0.2 }, uirevision: "keep",
    }, { displaylogo: false, responsive: true });
    this.ready = true;
  }

  // points: [{step, metrics}] in step order
  append(points) {
    const pts = points.filter((p) => p.metrics && Object.keys(p.metrics).length);
    if (!pts.length || typeof Plotly === "undefined") return;
    if (!this.ready) this._init(Object.keys(pts[0].metrics));
    const xs = this.names.map(() => []);
    const ys = this.names.map(() => []);
    for (const p of pts) {
      this.names.forEach((n, i) => { xs[i].push(p.step); ys[i].push(p.metrics[n] ?? null); });
    }
    Plotly.extendTraces(this.div, { x: xs, y: ys }, this.names.map((_, i) => i));
  }
}
