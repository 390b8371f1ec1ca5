// Renderer for `reconstructions`: probe inputs (top row) above the model's reconstructions.
import { el } from "../dom.js";
import { decodePng, drawn, fit, fmt } from "../draw.js";

export const title = "Reconstructions";

export function create(container) {
  const canvas = el("canvas", { class: "atlas strip", "data-panel": "reconstructions" });
  const info = el("div", { class: "hover", "data-info": "reconstructions" }, "\u00a0");
  container.append(canvas, info);
  return { canvas, info, token: 0 };
}

export async function render(state, p) {
  const token = ++state.token;
  const img = await decodePng(p.strip_png);
  if (token !== state.token) return;
  fit(state.canvas, img.width, img.height).drawImage(img, 0, 0);
  state.info.textContent = `top: inputs · bottom: reconstructions · mean ‖x − x̂‖²/‖x‖² = ${fmt(p.rel_error_mean)}`;
  drawn(state.canvas, p);
}
