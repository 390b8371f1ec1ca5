// Renderer for `sparsity`: L0 of the probe code and the histogram of |z| over active entries (log bins).
import { el } from "../dom.js";
import { drawn, fit, fmt } from "../draw.js";

export const title = "Sparsity";

export function create(container) {
  const canvas = el("canvas", { class: "chart", "data-panel": "sparsity" });
  const info = el("div", { class: "hover", "data-info": "sparsity" }, "\u00a0");
  container.append(canvas, info);
  return { canvas, info };
}

export function render(state, p) {
  const W = 480, H = 180;
  const ctx = fit(state.canvas, W, H);
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, W, H);
  const counts = p.abs_hist.counts, edges = p.abs_hist.edges;
  const hi = Math.max(...counts, 1);
  const bw = (W - 60) / counts.length;
  ctx.fillStyle = "#3b5bdb";
  counts.forEach((c, i) => {
    const h = ((H - 45) * c) / hi;
    ctx.fillRect(40 + i * bw, H - 25 - h, Math.max(1, bw - 1), h);
  });
  ctx.fillStyle = "#333";
  ctx.font = "11px sans-serif";
  ctx.fillText("histogram of |z| over active entries (log-spaced bins)", 40, 12);
  ctx.fillText(fmt(edges[0]), 40, H - 10);
  const last = fmt(edges[edges.length - 1]);
  ctx.fillText(last, W - 20 - ctx.measureText(last).width, H - 10);
  ctx.fillText(String(hi), 4, 26);
  state.info.textContent = `L0 ${fmt(p.l0_mean, 1)} of ${p.units} units (${(100 * p.l0_fraction).toFixed(1)}%)`
    + ` · ${p.zero_units} units silent on every probe · ${p.abs_hist.zeros} zero entries`;
  drawn(state.canvas, p);
}
