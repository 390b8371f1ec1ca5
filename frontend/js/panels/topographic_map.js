// Renderer for `topographic_map`: orientation hue × selectivity brightness, pin-wheels marked by
// handedness (white ring: counter-clockwise, black ring: clockwise), Λ, ρ next to π, smoothness.
import { el } from "../dom.js";
import { decodePng, drawn, fit, fmt } from "../draw.js";

export const title = "Orientation map";

export function create(container) {
  const canvas = el("canvas", { class: "atlas map", "data-panel": "topographic_map" });
  const stats = el("div", { class: "stats", "data-info": "topographic_map" }, "\u00a0");
  const hover = el("div", { class: "hover" }, "\u00a0");
  container.append(canvas, stats, hover);
  const state = { canvas, stats, hover, payload: null, token: 0 };
  canvas.addEventListener("mousemove", (ev) => {
    const p = state.payload;
    if (!p) return;
    const rect = canvas.getBoundingClientRect();
    const col = Math.floor(((ev.clientX - rect.left) / rect.width) * p.cols);
    const row = Math.floor(((ev.clientY - rect.top) / rect.height) * p.rows);
    const i = row * p.cols + col;
    if (i >= 0 && i < p.theta.length) {
      hover.textContent = `unit ${i} · orientation ${((p.theta[i] * 180) / Math.PI).toFixed(0)}° · selectivity ${fmt(p.selectivity[i], 2)}`;
    }
  });
  return state;
}

export async function render(state, p) {
  // the producer sends nothing for units with no spatial layout; should an empty payload come, draw
  // nothing rather than an empty map
  const box = state.canvas.closest("[data-panel-box]");
  if (box) box.style.display = p?.map_png ? "" : "none";
  if (!p?.map_png) return;
  state.payload = p;
  const token = ++state.token;
  const img = await decodePng(p.map_png);
  if (token !== state.token) return;
  const up = 2; // draw at 2× so the pin-wheel rings are crisp
  const ctx = fit(state.canvas, img.width * up, img.height * up);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(img, 0, 0, img.width * up, img.height * up);
  const s = p.scale * up;
  for (const [r, c, sign] of p.pinwheels) {
    ctx.beginPath();
    ctx.arc(c * s + s / 2, r * s + s / 2, s * 0.35, 0, 2 * Math.PI);
    ctx.lineWidth = 2;
    ctx.strokeStyle = sign > 0 ? "#fff" : "#000";
    ctx.stroke();
  }
  // the producer gives no ρ where the map spans fewer than 2Λ, and says so in rho_note
  const rho = p.rho_note ? p.rho_note : p.rho == null ? "–"
    : `${fmt(p.rho, 2)} per Λ²${p.rho_band == null ? "" : `, ${fmt(p.rho_band, 2)} band-passed`} (π ≈ 3.14)`;
  state.stats.textContent = `pin-wheels ${p.n_pinwheels} (${p.pinwheels_ccw} ⟲ white, ${p.pinwheels_cw} ⟳ black) · `
    + `Λ ${fmt(p.lambda, 2)} units · ρ ${rho} · smoothness ${fmt(p.smoothness, 2)}`
    + (p.layout === "positions" ? " · (units at their receptive fields' places on the image)"
      : p.on_grid === false && !p.layout ? " · (recorded before maps needed a spatial layout: row-major)" : "");
  drawn(state.canvas, p);
}
