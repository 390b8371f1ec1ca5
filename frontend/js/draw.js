// Drawing helpers shared by the panel renderers: colour maps, PNG decode, the "drawn" event.

const VIRIDIS = [[68, 1, 84], [72, 40, 120], [62, 74, 137], [49, 104, 142], [38, 130, 142],
  [31, 158, 137], [53, 183, 121], [110, 206, 88], [181, 222, 43], [253, 231, 37]];

// t in [0, 1] → [r, g, b]
export function viridis(t) {
  const x = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0)) * (VIRIDIS.length - 1);
  const i = Math.min(VIRIDIS.length - 2, Math.floor(x));
  const f = x - i;
  return VIRIDIS[i].map((c, k) => Math.round(c + f * (VIRIDIS[i + 1][k] - c)));
}

export function rgb(c) { return `rgb(${c[0]},${c[1]},${c[2]})`; }

// Decode a base64 PNG; resolves with an HTMLImageElement (or ImageBitmap where available).
export function decodePng(b64) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error("PNG decode failed"));
    img.src = `data:image/png;base64,${b64}`;
  });
}

// Size a canvas to `width`×`height` drawing units and return its context. The backing store is
// resized only when it changes (resizing clears and is slow). An enlarged panel (panel_box.js) sets
// canvas.__zoom = {css, dpr}: the renderer then draws the same picture at css×dpr more pixels (text
// and lines crisp, pixel images scaled without blur), shown css times larger.
export function fit(canvas, width, height) {
  const zoom = canvas.__zoom ?? { css: 1, dpr: 1 };
  const s = zoom.css * zoom.dpr;
  const w = Math.round(width * s), h = Math.round(height * s);
  if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
  canvas.__logical = [width, height];
  canvas.style.width = s === 1 ? "" : `${Math.round(width * zoom.css)}px`;
  // a chart (text, axes) is never blown up past its drawn size by the page's CSS: that blurs it
  if (canvas.classList.contains("chart")) canvas.style.maxWidth = s === 1 ? `min(100%, ${width}px)` : "none";
  const ctx = canvas.getContext("2d");
  ctx.setTransform(s, 0, 0, s, 0, 0);
  if (s !== 1) ctx.imageSmoothingEnabled = false;
  return ctx;
}

// Every renderer calls this once the pixels are on the canvas: the timeline tests and the bench
// wait for it, and the page records the draw time against the frame's worker time.
export function drawn(canvas, payload) {
  canvas.dataset.drawnStep = payload.step ?? "";
  canvas.dispatchEvent(new CustomEvent("drawn", { detail: { step: payload.step, time: payload.time } }));
}

// Heat map of values on a rows×cols lattice into ctx at (x0, y0), `cell` pixels a value.
export function heatmap(ctx, values, rows, cols, cell, x0 = 0, y0 = 0, range = null) {
  const finite = values.filter((v) => v != null && Number.isFinite(v));
  const lo = range ? range[0] : Math.min(...finite, 0);
  const hi = range ? range[1] : Math.max(...finite, lo + 1e-12);
  for (let i = 0; i < rows * cols && i < values.length; i++) {
    ctx.fillStyle = rgb(viridis((values[i] - lo) / (hi - lo || 1)));
    ctx.fillRect(x0 + (i % cols) * cell, y0 + Math.floor(i / cols) * cell, cell, cell);
  }
  return [lo, hi];
}

export function fmt(v, digits = 3) {
  if (v == null || !Number.isFinite(v)) return "–";
  if (v !== 0 && (Math.abs(v) < 1e-3 || Math.abs(v) >= 1e4)) return v.toExponential(2);
  return (+v.toFixed(digits)).toString();
}

// The mouse position in the canvas's own pixels (the canvas may be scaled by CSS).
export function canvasPoint(canvas, ev) {
  const rect = canvas.getBoundingClientRect();
  const [w, h] = canvas.__logical ?? [canvas.width, canvas.height]; // drawing units, whatever the zoom
  return [((ev.clientX - rect.left) / rect.width) * w, ((ev.clientY - rect.top) / rect.height) * h];
}
