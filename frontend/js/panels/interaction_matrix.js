// Renderer for `interaction_matrix`: S as a heat map (viridis for S ≥ 0, blue–white–red when signed),
// entries the model fixes at zero in light grey, tree subtrees outlined; hover reads an entry.
import { el } from "../dom.js";
import { canvasPoint, decodePng, drawn, fit, fmt, rgb, viridis } from "../draw.js";

export const title = "Interaction matrix S";

const MASKED = [225, 225, 225];

async function pixelsOf(b64) {
  const img = await decodePng(b64);
  const c = document.createElement("canvas");
  c.width = img.width;
  c.height = img.height;
  const ctx = c.getContext("2d");
  ctx.drawImage(img, 0, 0);
  return ctx.getImageData(0, 0, img.width, img.height);
}

// t in [−1, 1] → blue (negative) – white – red (positive)
export function diverging(t) {
  const a = Math.min(1, Math.abs(Number.isFinite(t) ? t : 0));
  return t < 0 ? [255 - 196 * a, 255 - 164 * a, 255 - 36 * a].map(Math.round)
    : [255 - 36 * a, 255 - 196 * a, 255 - 186 * a].map(Math.round);
}

// The matrix payload → {image: n×n coloured canvas, value(i, j): the entry as quantised in the PNG}
export async function matrixImage(m) {
  const data = await pixelsOf(m.png);
  const mask = m.mask_png ? await pixelsOf(m.mask_png) : null;
  const n = data.width;
  const image = document.createElement("canvas");
  image.width = n;
  image.height = n;
  const ctx = image.getContext("2d");
  const out = ctx.createImageData(n, n);
  for (let i = 0; i < n * n; i++) {
    const v = data.data[4 * i];
    const col = mask && mask.data[4 * i] === 0 ? MASKED : m.signed ? diverging((v - 127.5) / 127.5) : viridis(v / 255);
    out.data[4 * i] = col[0]; out.data[4 * i + 1] = col[1]; out.data[4 * i + 2] = col[2]; out.data[4 * i + 3] = 255;
  }
  ctx.putImageData(out, 0, 0);
  const value = (i, j) => {
    const v = data.data[4 * (i * n + j)];
    if (mask && mask.data[4 * (i * n + j)] === 0) return null;
    return m.signed ? ((v - 127.5) / 127.5) * m.scale : (v / 255) * m.scale;
  };
  return { image, value };
}

export function drawMatrix(ctx, img, m, x0, y0, size) {
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(img, x0, y0, size, size);
  const cell = size / m.shown;
  ctx.strokeStyle = "#222";
  ctx.lineWidth = 1;
  for (const [start, len] of m.blocks || []) ctx.strokeRect(x0 + start * cell + 0.5, y0 + start * cell + 0.5, len * cell - 1, len * cell - 1);
  // colour bar
  const bx = x0 + size + 10;
  for (let k = 0; k < size; k++) {
    const t = 1 - k / size;
    ctx.fillStyle = rgb(m.signed ? diverging(2 * t - 1) : viridis(t));
    ctx.fillRect(bx, y0 + k, 12, 1);
  }
  ctx.fillStyle = "#333";
  ctx.font = "11px sans-serif";
  ctx.fillText(fmt(m.scale), bx + 15, y0 + 9);
  ctx.fillText(m.signed ? fmt(-m.scale) : "0", bx + 15, y0 + size);
}

export function matrixCell(m, size, x, y) { // canvas coordinates inside the matrix → [row, col] or null
  const i = Math.floor((y / size) * m.shown), j = Math.floor((x / size) * m.shown);
  return i >= 0 && j >= 0 && i < m.shown && j < m.shown ? [i, j] : null;
}

const SIZE = 256, X0 = 10, Y0 = 18;

export function create(container) {
  const canvas = el("canvas", { class: "chart", "data-panel": "interaction_matrix" });
  const info = el("div", { class: "hover", "data-info": "interaction_matrix" }, "\u00a0");
  const hover = el("div", { class: "hover", "data-hover": "interaction_matrix" }, "\u00a0");
  container.append(canvas, info, hover);
  const state = { canvas, info, hover, token: 0, payload: null, matrix: null };
  canvas.addEventListener("mousemove", (ev) => {
    const p = state.payload;
    if (!p || !state.matrix) return;
    const [px, py] = canvasPoint(canvas, ev);
    const cell = matrixCell(p, SIZE, px - X0, py - Y0);
    if (!cell) return;
    const v = state.matrix.value(...cell);
    hover.textContent = `S[${p.order[cell[0]]}, ${p.order[cell[1]]}] ${v == null ? "fixed at 0 by the mask" : `≈ ${fmt(v)}`}`;
  });
  return state;
}

export async function render(state, p) {
  const token = ++state.token;
  const matrix = await matrixImage(p);
  if (token !== state.token) return;
  state.payload = p;
  state.matrix = matrix;
  const W = 330, H = SIZE + Y0 + 8;
  const ctx = fit(state.canvas, W, H);
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, W, H);
  ctx.fillStyle = "#333";
  ctx.font = "11px sans-serif";
  ctx.fillText(p.blocks?.length ? "S, units in tree order (boxes: subtrees)" : "S, units in index order", X0, 12);
  drawMatrix(ctx, matrix.image, p, X0, Y0, SIZE);
  state.info.textContent = `${p.shown === p.units ? `${p.units} units` : p.selection} · max |S_ij| ${fmt(p.scale)}`
    + ` · ${(100 * p.nonzero_share).toFixed(1)}% non-zero · mean S_ii ${fmt(p.diag_mean)}`
    + (p.as_of_step != null ? ` · as of step ${p.as_of_step}` : "");
  drawn(state.canvas, p);
}
