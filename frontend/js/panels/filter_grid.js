// Renderer for `filter_grid`: the decoder (or encoder) atlas on the model's topology; hover names
// the unit, its place, group(s) and statistics on the probe batch.
import { download, el } from "../dom.js";
import { canvasPoint, decodePng, drawn, fit, fmt } from "../draw.js";

export const title = "Filters";

// Conv stacks: one block per layer (layout.layers), each its own tile size.
function layerOf(p, unit) {
  return p.layout?.type === "layers" ? p.layout.layers.find((l) => unit >= l.first && unit < l.first + l.count) : null;
}

function tileOf(p, unit) {
  return layerOf(p, unit)?.tile ?? p.tile;
}

function tilePlace(p, unit) {
  if (p.tiles) return p.tiles[unit];
  const [h, w] = p.tile;
  return [p.pad + (unit % p.cols) * (w + p.pad), p.pad + Math.floor(unit / p.cols) * (h + p.pad)];
}

function unitAt(p, x, y) {
  const [h, w] = p.tile;
  if (!p.tiles) {
    const col = Math.floor((x - p.pad) / (w + p.pad)), row = Math.floor((y - p.pad) / (h + p.pad));
    const unit = row * p.cols + col;
    return col >= 0 && col < p.cols && row >= 0 && unit < p.count ? unit : -1;
  }
  return p.tiles.findIndex(([tx, ty], unit) => {
    const [th, tw] = tileOf(p, unit);
    return x >= tx && x < tx + tw && y >= ty && y < ty + th;
  });
}

const MAX_GROUPS = 4;  // as the producer lists them

// The groups a unit belongs to: listed in the payload, or worked out from the rule that made them
// (torus pools: pool×pool windows starting every `stride` units, wrapping; group index row-major).
export function unitGroups(p, unit) {
  if (p.groups) return { groups: p.groups[unit], count: p.group_counts?.[unit] ?? p.groups[unit].length };
  const rule = p.group_rule;
  if (rule?.type !== "torus_2d") return null;
  const { side, pool, stride } = rule;
  const starts = Math.ceil(side / stride), r = Math.floor(unit / side), c = unit % side;
  const covering = (v) => [...Array(starts).keys()].filter((k) => (((v - k * stride) % side) + side) % side < pool);
  const groups = [];
  for (const gr of covering(r)) for (const gc of covering(c)) groups.push(gr * starts + gc);
  return { groups: groups.slice(0, MAX_GROUPS), count: groups.length };
}

export function hoverText(p, unit) {
  const layer = layerOf(p, unit);
  const parts = layer ? [`${layer.label.split(" · ")[0]} · map ${unit - layer.first}`] : [`unit ${unit}`];
  if (layer && layer.channels > 1) parts.push(`${layer.channels} blocks: one per pooled group below`);
  if (p.layout?.type === "grid") parts.push(`grid (${Math.floor(unit / p.cols)}, ${unit % p.cols})`);
  const listed = unitGroups(p, unit);
  if (listed) {
    const { groups: g, count: n } = listed;
    parts.push(`group${n === 1 ? "" : "s"} ${g.join(", ")}${n > g.length ? ` (+${n - g.length} more)` : ""}`);
  }
  const s = p.stats || {};
  if (s.mean) parts.push(`mean z ${fmt(s.mean[unit])}`);
  if (s.active) parts.push(`active on ${(100 * s.active[unit]).toFixed(0)}% of probes`);
  if (s.norm) parts.push(`‖d‖ ${fmt(s.norm[unit])}`);
  return parts.join(" · ");
}

// The filters' evolution over the whole run, encoded by the server from the stored frames: an
// animated GIF, or an H.264 MP4 of the view shown (decoder or encoder).
async function exportMovie(state, ctx, button, format) {
  button.disabled = true;
  state.hover.textContent = `encoding ${format.toUpperCase()}…`;
  try {
    const params = new URLSearchParams({ max_frames: 120, view: state.view });
    const { blob, frames } = await ctx.fetchBlob(`/api/runs/${ctx.runId}/exports/filter_grid.${format}?${params}`);
    download(blob, `${ctx.runId}-filters${format === "mp4" ? `-${state.view}` : ""}.${format}`);
    state.hover.textContent = `${format.toUpperCase()}: ${frames} frames`;
  } catch (err) {
    state.hover.textContent = `${format.toUpperCase()} export: ${err.message}`;
    ctx.onError?.(`${format.toUpperCase()} export: ${err.message}`);
  } finally {
    button.disabled = false;
  }
}

// The panel head's tools (panel_box.js): GIF and MP4 of the run, where the page can fetch them.
export function tools(state, ctx) {
  if (!ctx.fetchBlob || !ctx.runId) return [];
  const gif = el("button", { id: "export-gif", title: "the filters' evolution over the whole run as an animated GIF" }, "GIF");
  const mp4 = el("button", { id: "export-mp4", title: "the filters' evolution over the whole run as an MP4 video (the view shown: decoder or encoder)" }, "MP4");
  gif.addEventListener("click", () => exportMovie(state, ctx, gif, "gif"));
  mp4.addEventListener("click", () => exportMovie(state, ctx, mp4, "mp4"));
  return [gif, mp4];
}

// The page's draw-latency record (worker time of a frame → its pixels on screen) is taken on this
// panel: record({step, time, drawn}) each time a frame's filters are on the canvas.
export function latency(state, record) {
  state.canvas.addEventListener("drawn", (ev) => record({ step: ev.detail.step, time: ev.detail.time, drawn: Date.now() / 1000 }));
}

export function create(container) {
  const canvas = el("canvas", { class: "atlas", "data-panel": "filter_grid" });
  const hover = el("div", { class: "hover", "data-hover": "filter_grid" }, "\u00a0");
  const which = el("div", { class: "toggle" });
  const labels = el("div", { class: "layer-labels", style: "position:absolute;inset:0;pointer-events:none" });
  const stage = el("div", { style: "position:relative" }, canvas, labels);
  const state = { canvas, hover, labels, payload: null, token: 0, view: "decoder", buttons: {}, up: 1 };
  for (const v of ["decoder", "encoder"]) {
    const b = el("button", { "data-view": v, class: v === state.view ? "on" : "" }, v);
    b.addEventListener("click", () => {
      state.view = v;
      for (const [k, btn] of Object.entries(state.buttons)) btn.className = k === v ? "on" : "";
      if (state.payload) render(state, state.payload);
    });
    state.buttons[v] = b;
    which.append(b);
  }
  container.append(which, stage, hover);
  canvas.addEventListener("mousemove", (ev) => {
    const p = state.payload;
    if (!p) return;
    const [cx, cy] = canvasPoint(canvas, ev);
    const unit = unitAt(p, cx / state.up, cy / state.up);
    if (unit >= 0) hover.textContent = hoverText(p, unit);
  });
  return state;
}

export async function render(state, payload) {
  state.payload = payload;
  const token = ++state.token; // a slow decode must not overwrite a newer frame
  const enc = state.buttons.encoder;
  enc.disabled = !payload.encoder_png;
  enc.title = payload.encoder_omitted ?? (payload.encoder_png ? "" : "this model has no separate encoder");
  const b64 = state.view === "encoder" && payload.encoder_png ? payload.encoder_png : payload.atlas_png;
  const img = await decodePng(b64);
  if (token !== state.token) return;
  const { canvas } = state;
  const tree = payload.layout?.type === "tree" && payload.tiles;
  // a tree's edges are drawn over the atlas at 3× its pixels: thin lines between the tiles, not
  // bands one atlas pixel wide blown up by the page
  state.up = tree ? 3 : 1;
  const ctx = fit(canvas, img.width * state.up, img.height * state.up);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(img, 0, 0, img.width * state.up, img.height * state.up);
  if (tree) { // edges from each node to its parent
    const [h, w] = payload.tile;
    ctx.scale(state.up, state.up);
    ctx.strokeStyle = "rgba(120,170,255,0.7)";
    ctx.lineWidth = 1 / state.up;
    ctx.beginPath();
    payload.layout.parents.forEach((parent, node) => {
      if (parent < 0) return;
      const [px, py] = tilePlace(payload, parent), [cx, cy] = tilePlace(payload, node);
      ctx.moveTo(px + w / 2, py + h);
      ctx.lineTo(cx + w / 2, cy);
    });
    ctx.stroke();
  }
  state.labels.replaceChildren(...(payload.layout?.type === "layers" ? payload.layout.layers : []).map((l) =>
    el("span", { "data-layer-label": l.label.split(" · ")[0], style: `position:absolute;left:2px;top:${(100 * l.top / img.height).toFixed(2)}%;font-size:11px;line-height:1;color:#ddd;background:rgba(0,0,0,0.55);padding:0 3px;right:2px` }, l.label)));
  canvas.dataset.view = b64 === payload.encoder_png ? "encoder" : "decoder";
  drawn(canvas, payload);
}
