// Renderer for `drsae_units`: DrSAE's categorical vs part units — selectivity against recurrent growth
// per unit, the activity build-up over iterations t, and the decoder columns of each kind.
import { el } from "../dom.js";
import { canvasPoint, decodePng, drawn, fit, fmt, rgb } from "../draw.js";

export const title = "DrSAE unit types";

const COLOURS = { 0: [170, 170, 170], 1: [59, 91, 219], 2: [230, 119, 0] }; // dead, part, categorical
const W = 700, PLOT_H = 170, SCALE = 2;

// a framed plot area with its ticks: [lo, hi] on each axis, labelled at both ends and the middle
function axes(ctx, x0, y0, w, h, xlabel, ylabel, xr = null, yr = null) {
  ctx.strokeStyle = "#999";
  ctx.strokeRect(x0 + 0.5, y0 + 0.5, w, h);
  ctx.fillStyle = "#333";
  ctx.font = "11px sans-serif";
  const tick = (v) => fmt(v, 2);
  for (const k of [0, 0.5, 1]) {
    if (xr) {
      const x = x0 + k * w, t = tick(xr[0] + k * (xr[1] - xr[0]));
      ctx.fillRect(x, y0 + h, 1, 4);
      ctx.fillText(t, Math.min(x0 + w - ctx.measureText(t).width, Math.max(x0, x - ctx.measureText(t).width / 2)), y0 + h + 14);
    }
    if (yr) {
      const y = y0 + h - k * h, t = tick(yr[0] + k * (yr[1] - yr[0]));
      ctx.fillRect(x0 - 4, y, 4, 1);
      ctx.fillText(t, x0 - 6 - ctx.measureText(t).width, y + 4);
    }
  }
  ctx.fillText(xlabel, x0 + w / 2 - ctx.measureText(xlabel).width / 2, y0 + h + (xr ? 27 : 13));
  ctx.save();
  ctx.translate(x0 - (yr ? 34 : 6), y0 + h / 2 + ctx.measureText(ylabel).width / 2);
  ctx.rotate(-Math.PI / 2);
  ctx.fillText(ylabel, 0, 0);
  ctx.restore();
}

export function create(container) {
  const canvas = el("canvas", { class: "chart", "data-panel": "drsae_units" });
  const info = el("div", { class: "hover", "data-info": "drsae_units" }, "\u00a0");
  const hover = el("div", { class: "hover", "data-hover": "drsae_units" }, "\u00a0");
  container.append(canvas, info, hover);
  const state = { canvas, info, hover, token: 0, payload: null, tiles: [] };
  canvas.addEventListener("mousemove", (ev) => {
    const p = state.payload;
    if (!p) return;
    const [x, y] = canvasPoint(canvas, ev);
    const hit = state.tiles.find((t) => x >= t.x && x < t.x + t.w && y >= t.y && y < t.y + t.h);
    if (hit) {
      const u = hit.unit;
      hover.textContent = `unit ${u} · ${hit.kind} · prefers class ${p.preferred_class[u]} · selectivity ${fmt(p.selectivity[u])}`
        + ` · growth ${fmt(p.growth[u])}`;
    }
  });
  return state;
}

export async function render(state, p) {
  const token = ++state.token;
  const cols = await decodePng(p.columns_png);
  if (token !== state.token) return;
  state.payload = p;
  const stripH = cols.height * SCALE;
  const H = 22 + PLOT_H + 44 + stripH + 8;
  const ctx = fit(state.canvas, W, H);
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, W, H);
  ctx.fillStyle = "#333";
  ctx.font = "11px sans-serif";
  // scatter: selectivity (x) against growth (y), one dot a unit, coloured by kind
  const sx = 60, sy = 22, sw = 250, sh = PLOT_H;
  ctx.fillText("units: class selectivity vs growth over t", sx, 12);
  const g = p.growth.map((v) => v ?? 0), gLo = Math.min(0, ...g), gHi = Math.max(1, ...g);
  axes(ctx, sx, sy, sw, sh, "selectivity", "growth", [0, 1], [gLo, gHi]);
  for (const kind of [0, 1, 2]) {
    ctx.fillStyle = rgb(COLOURS[kind]);
    p.kinds.forEach((k, u) => {
      if (k !== kind) return;
      const x = sx + (p.selectivity[u] ?? 0) * sw, y = sy + sh - ((g[u] - gLo) / (gHi - gLo)) * sh;
      ctx.fillRect(x - 2, y - 2, 4, 4);
    });
  }
  // build-up: mean activity of each kind at t = 1…T, relative to t = T
  const bx = 410, bw = 270;
  ctx.fillStyle = "#333";
  ctx.fillText("activity build-up over iterations t (÷ value at T)", bx, 12);
  const ts = p.buildup?.part?.relative?.length ?? p.steps;
  const curves = [["part", 1], ["categorical", 2]];
  const all = curves.flatMap(([k]) => p.buildup[k].relative.map((v) => v ?? 0));
  const top = Math.max(1.05, ...all);
  axes(ctx, bx, sy, bw, sh, `iteration t = 1…${p.steps}`, "z^t / z^T", [1, Math.max(ts, 2)], [0, top]);
  for (const [k, code] of curves) {
    if (!p.counts[k]) continue; // no unit of this kind: no curve
    const ys = p.buildup[k].relative;
    ctx.strokeStyle = rgb(COLOURS[code]);
    ctx.lineWidth = 2;
    ctx.beginPath();
    ys.forEach((v, t) => {
      const x = bx + (t / Math.max(1, ys.length - 1)) * bw, y = sy + sh - ((v ?? 0) / top) * sh;
      if (t) ctx.lineTo(x, y); else ctx.moveTo(x, y);
    });
    ctx.stroke();
    ctx.lineWidth = 1;
  }
  ctx.fillStyle = rgb(COLOURS[2]);
  ctx.fillText("categorical", bx + 6, sy + 14);
  ctx.fillStyle = rgb(COLOURS[1]);
  ctx.fillText("part", bx + 80, sy + 14);
  // decoder columns: categorical row, part row
  const cy = sy + sh + 42, cx = 90;
  ctx.fillStyle = "#333";
  ctx.fillText("decoder columns", 4, cy - 6);
  ctx.fillStyle = rgb(COLOURS[2]);
  ctx.fillText("categorical", 4, cy + 14);
  ctx.fillStyle = rgb(COLOURS[1]);
  ctx.fillText("part", 4, cy + stripH / 2 + 14);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(cols, cx, cy, cols.width * SCALE, stripH);
  const [th, tw] = p.tile;
  state.tiles = [];
  p.columns.forEach((units, row) => units.forEach((unit, k) => state.tiles.push({
    unit, kind: row ? "part" : "categorical", w: tw * SCALE, h: th * SCALE,
    x: cx + (p.pad + k * (tw + p.pad)) * SCALE, y: cy + (p.pad + row * (th + p.pad)) * SCALE })));
  const c = p.counts;
  state.info.textContent = `${c.categorical} categorical · ${c.part} part · ${c.dead} dead of ${p.units} units`
    + ` (probe of ${p.probe_size}, labels: ${p.labels_from})` + (p.as_of_step != null ? ` · as of step ${p.as_of_step}` : "");
  drawn(state.canvas, p);
}
