// Renderer for `group_activations`: group norms ‖z_P‖ on the group topology (heat map on the torus,
// bars for 1-D groups, coloured nodes on a tree), the per-unit mean activation, the share of zero groups.
import { el } from "../dom.js";
import { drawn, fit, fmt, heatmap, rgb, viridis } from "../draw.js";

export const title = "Group activations";

export function create(container) {
  const canvas = el("canvas", { class: "chart", "data-panel": "group_activations" });
  const info = el("div", { class: "hover", "data-info": "group_activations" }, "\u00a0");
  container.append(canvas, info);
  return { canvas, info };
}

export function render(state, p) {
  const { canvas } = state;
  const topo = p.topology || { type: "bars" };
  const W = 480, H = 220;
  const ctx = fit(canvas, W, H);
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, W, H);
  ctx.fillStyle = "#333";
  ctx.font = "11px sans-serif";
  const norms = p.norms.map((v) => v ?? 0);
  const hi = Math.max(...norms, 1e-12);
  if (topo.type === "grid") {
    const cell = Math.floor(Math.min(200 / topo.rows, 200 / topo.cols));
    heatmap(ctx, norms, topo.rows, topo.cols, cell, 10, 16, [0, hi]);
    ctx.fillStyle = "#333";
    ctx.fillText("group norms ‖z_P‖ (torus)", 10, 11);
    const ucell = Math.floor(Math.min(200 / topo.unit_rows, 200 / topo.unit_cols));
    const um = p.unit_mean.map((v) => v ?? 0);
    heatmap(ctx, um, topo.unit_rows, topo.unit_cols, ucell, 250, 16, [0, Math.max(...um, 1e-12)]);
    ctx.fillStyle = "#333";
    ctx.fillText("mean activation per unit", 250, 11);
  } else if (topo.type === "tree") {
    const parents = topo.parents, n = parents.length, depth = new Array(n).fill(0);
    for (let i = 0; i < n; i++) depth[i] = parents[i] < 0 ? 0 : depth[parents[i]] + 1;
    const levels = [];
    depth.forEach((d, i) => (levels[d] ||= []).push(i));
    const pos = [];
    levels.forEach((nodes, d) => nodes.forEach((node, k) => {
      pos[node] = [(W * (k + 1)) / (nodes.length + 1), 24 + d * ((H - 40) / Math.max(levels.length - 1, 1))];
    }));
    ctx.strokeStyle = "#bbb";
    parents.forEach((par, i) => { if (par >= 0) { ctx.beginPath(); ctx.moveTo(...pos[par]); ctx.lineTo(...pos[i]); ctx.stroke(); } });
    const groupOf = new Map((topo.roots || []).map((r, j) => [r, j]));
    pos.forEach(([x, y], node) => {
      const j = groupOf.get(node) ?? node;
      ctx.fillStyle = rgb(viridis((norms[j] ?? 0) / hi));
      ctx.beginPath();
      ctx.arc(x, y, Math.max(3, Math.min(10, 160 / n)), 0, 2 * Math.PI);
      ctx.fill();
    });
    ctx.fillStyle = "#333";
    ctx.fillText("subtree group norms (node colour)", 6, 11);
  } else {
    const n = norms.length, bw = (W - 20) / n;
    norms.forEach((v, j) => {
      const h = ((H - 40) * v) / hi;
      ctx.fillStyle = rgb(viridis(v / hi));
      ctx.fillRect(10 + j * bw, H - 20 - h, Math.max(1, bw - 1), h);
    });
    ctx.fillStyle = "#333";
    ctx.fillText("group norms ‖z_P‖ (1-D groups in order)", 10, 11);
  }
  state.info.textContent = `${p.n_groups} groups · ${(100 * p.zero_share).toFixed(1)}% all-zero (probe of ${p.probe_size})`
    + ` · ${(100 * p.active_share).toFixed(1)}% of units active · max group norm ${fmt(hi)}`;
  drawn(canvas, p);
}
