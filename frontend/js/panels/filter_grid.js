// Renderer for the `filter_grid` panel: draws the PNG atlas on a canvas, hover names the unit.
import { el } from "../api.js";

export const title = "Filters";

export function create(container) {
  const canvas = el("canvas", { class: "atlas", "data-panel": "filter_grid" });
  const hover = el("div", { class: "hover" }, "\u00a0");
  container.append(canvas, hover);
  const state = { canvas, hover, payload: null, token: 0 };
  canvas.addEventListener("mousemove", (ev) => {
    const p = state.payload;
    if (!p) return;
    const rect = canvas.getBoundingClientRect();
    const x = ((ev.clientX - rect.left) / rect.width) * canvas.width;
    const y = ((ev.clientY - rect.top) / rect.height) * canvas.height;
    const col = Math.floor((x - p.pad) / (p.tile[1] + p.pad));
    const row = Math.floor((y - p.pad) / (p.tile[0] + p.pad));
    const unit = row * p.cols + col;
    if (col < 0 || col >= p.cols || unit < 0 || unit >= p.count) return;
    const where = p.layout?.type === "grid" ? ` at grid (${row}, ${col})` : "";
    hover.textContent = `unit ${unit}${where}`;
  });
  return state;
}

export function render(state, payload) {
  state.payload = payload;
  const token = ++state.token; // a slow decode must not overwrite a newer frame
  const img = new Image();
  img.onload = () => {
    if (token !== state.token) return;
    const { canvas } = state;
    if (canvas.width !== img.width || canvas.height !== img.height) {
      canvas.width = img.width;
      canvas.height = img.height;
    }
    canvas.getContext("2d").drawImage(img, 0, 0);
    canvas.dataset.drawnStep = payload.step ?? "";
    canvas.dispatchEvent(new CustomEvent("drawn", { detail: payload }));
  };
  img.src = `data:image/png;base64,${payload.atlas_png}`;
}
