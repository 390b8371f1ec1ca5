// Renderer for `tree_inhibition`: the tree with each node's filter as its picture (size ∝ √ mean |z|,
// frame colour = share of probes the unit is active on), edges to parents; beside it S in tree order.
import { el } from "../dom.js";
import { canvasPoint, decodePng, drawn, fit, fmt, rgb, viridis } from "../draw.js";
import { drawMatrix, matrixCell, matrixImage } from "./interaction_matrix.js";

export const title = "Tree inhibition";

const MIN_TREE_W = 560, LEAF_W = 30, LEVEL_H = 64, TOP = 18, MSIZE = 220;
// the tree takes the width its leaves need (≥ 26 px a leaf picture), the page scrolls it if it must
const treeWidth = (leaves) => Math.max(MIN_TREE_W, leaves * LEAF_W);

// x of every node: leaves evenly spaced in depth-first order, a parent centred over its children
export function treeLayout(parents, width) {
  const n = parents.length, children = Array.from({ length: n }, () => []), roots = [];
  parents.forEach((p, i) => (p < 0 ? roots : children[p]).push(i));
  const depth = new Array(n).fill(0), x = new Array(n).fill(0);
  let leaves = 0;
  const order = [];
  const stack = roots.slice().reverse();
  while (stack.length) {
    const v = stack.pop();
    order.push(v);
    for (const c of children[v]) depth[c] = depth[v] + 1;
    stack.push(...children[v].slice().reverse());
  }
  const leafCount = order.filter((v) => !children[v].length).length;
  for (const v of order) if (!children[v].length) x[v] = ((leaves++ + 0.5) * width) / leafCount;
  for (const v of order.slice().reverse()) if (children[v].length) x[v] = children[v].reduce((s, c) => s + x[c], 0) / children[v].length;
  return { x, depth, levels: Math.max(...depth) + 1, leafCount };
}

export function create(container) {
  const canvas = el("canvas", { class: "chart", "data-panel": "tree_inhibition" });
  const info = el("div", { class: "hover", "data-info": "tree_inhibition" }, "\u00a0");
  const hover = el("div", { class: "hover", "data-hover": "tree_inhibition" }, "\u00a0");
  container.append(canvas, info, hover);
  const state = { canvas, info, hover, token: 0, payload: null, nodes: [], matrix: null };
  canvas.addEventListener("mousemove", (ev) => {
    const p = state.payload;
    if (!p) return;
    const [x, y] = canvasPoint(canvas, ev);
    const node = state.nodes.findIndex((b) => b && x >= b[0] && x < b[0] + b[2] && y >= b[1] && y < b[1] + b[2]);
    if (node >= 0) {
      hover.textContent = `unit ${node} · depth ${p.depth[node]}${p.parents[node] >= 0 ? ` · parent ${p.parents[node]}` : " (root)"}`
        + ` · mean |z| ${fmt(p.activity[node])} · active on ${(100 * p.active[node]).toFixed(0)}% of probes`
        + ` · inhibition received ${fmt(p.inhibition[node])}`;
      return;
    }
    const cell = state.matrix && matrixCell(p.matrix, MSIZE, x - state.treeW - 20, y - TOP);
    if (cell) {
      const v = state.matrix.value(...cell);
      hover.textContent = `S[${p.matrix.order[cell[0]]}, ${p.matrix.order[cell[1]]}] ${v == null ? "fixed at 0 (same branch)" : `≈ ${fmt(v)}`}`;
    }
  });
  return state;
}

export async function render(state, p) {
  const token = ++state.token;
  const [atlas, matrix] = await Promise.all([decodePng(p.atlas_png), matrixImage(p.matrix)]);
  if (token !== state.token) return;
  state.payload = p;
  state.matrix = matrix;
  const leaves = p.parents.filter((_, v) => !p.parents.includes(v)).length;
  const TREE_W = treeWidth(leaves);
  state.treeW = TREE_W;
  const lay = treeLayout(p.parents, TREE_W);
  const W = TREE_W + 20 + MSIZE + 60, H = Math.max(TOP + lay.levels * LEVEL_H, TOP + MSIZE + 10);
  const ctx = fit(state.canvas, W, H);
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, W, H);
  const base = Math.max(8, Math.min(40, TREE_W / lay.leafCount - 3, LEVEL_H - 14));
  const hi = Math.max(...p.activity.map((v) => v ?? 0), 1e-12);
  const cy = (node) => TOP + lay.depth[node] * LEVEL_H + LEVEL_H / 2;
  ctx.strokeStyle = "#aab";
  ctx.lineWidth = 1;
  ctx.beginPath();
  p.parents.forEach((par, node) => { if (par >= 0) { ctx.moveTo(lay.x[par], cy(par)); ctx.lineTo(lay.x[node], cy(node)); } });
  ctx.stroke();
  const [th, tw] = p.tile;
  ctx.imageSmoothingEnabled = false;
  state.nodes = p.parents.map((_, node) => {
    const size = Math.round(base * (0.45 + 0.55 * Math.sqrt((p.activity[node] ?? 0) / hi)));
    const x = Math.round(lay.x[node] - size / 2), y = Math.round(cy(node) - size / 2);
    ctx.fillStyle = rgb(viridis(p.active[node] ?? 0));
    ctx.fillRect(x - 2, y - 2, size + 4, size + 4);
    const sx = p.pad + (node % p.cols) * (tw + p.pad), sy = p.pad + Math.floor(node / p.cols) * (th + p.pad);
    ctx.drawImage(atlas, sx, sy, tw, th, x, y, size, size);
    return [x - 2, y - 2, size + 4];
  });
  ctx.fillStyle = "#333";
  ctx.font = "11px sans-serif";
  ctx.fillText("filters on the tree (size: mean |z|, frame: share active)", 4, 12);
  ctx.fillText("S in tree order (grey: same branch, never inhibits)", TREE_W + 20, 12);
  drawMatrix(ctx, matrix.image, p.matrix, TREE_W + 20, TOP, MSIZE);
  const act = p.active.filter((a) => a > 0).length;
  state.info.textContent = `${p.count} units on a tree of ${lay.levels} levels · ${act} active on some probe`
    + ` · max |S_ij| ${fmt(p.matrix.scale)}`
    + (p.branch ? ` · filter |cos| within / across branch ${fmt(p.branch.ratio)}× (filters relabelled at random:`
      + ` ${fmt(p.branch.relabelled_mean)} ± ${fmt(p.branch.relabelled_std)})` : "")
    + (p.as_of_step != null ? ` · as of step ${p.as_of_step}` : "");
  drawn(state.canvas, p);
}
