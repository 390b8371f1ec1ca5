// The frame around one panel, the same on the run page, the compare page and the HTML export: its
// title, the renderer's own tools (e.g. the filter grid's GIF/MP4), PNG download, and Enlarge —
// the panel fills the window, redrawn at the window's resolution (not a blown-up bitmap), and keeps
// following the timeline (the page renders into the same box); Esc or the button brings it back.
import { download, el } from "./dom.js";

let enlarged = null; // the one PanelBox filling the window

document.addEventListener("keydown", (ev) => {
  if (ev.key === "Escape" && enlarged) { ev.preventDefault(); enlarged.enlarge(false); }
});

// Panels whose layout needs the page's whole width to be read at their drawn size.
const WIDE = new Set(["tree_inhibition", "drsae_units"]);

export class PanelBox {
  // ctx: what the renderer's tools may use ({runId, fetchBlob, onError}); `label`: a heading prefix
  constructor(kind, renderer, { ctx = null, label = null } = {}) {
    this.kind = kind;
    this.renderer = renderer;
    this.body = el("div", { "data-kind": kind });
    const png = el("button", { "data-export-png": kind, title: "download this panel as PNG" }, "PNG");
    this.zoomBtn = el("button", { "data-enlarge": kind, title: "fill the window with this panel (Esc: back)" }, "⤢ Enlarge");
    this.head = el("div", { class: "panel-head" }, el("h3", {}, label ? `${label} · ${renderer.title}` : renderer.title));
    this.root = el("div", { class: `panel${WIDE.has(kind) ? " wide" : ""}`, "data-panel-box": kind }, this.head, this.body);
    this.state = renderer.create(this.body);
    if (ctx && renderer.tools) this.head.append(...renderer.tools(this.state, ctx));
    this.head.append(png, this.zoomBtn);
    png.addEventListener("click", () => this.state.canvas.toBlob((b) =>
      download(b, `${kind}-step${this.last?.step ?? ""}.png`), "image/png"));
    this.zoomBtn.addEventListener("click", () => this.enlarge(enlarged !== this));
  }

  // nothing to draw for this panel (the compare page: a kind the other run's model has)
  absent(text) {
    this.root.dataset.absent = "1";
    this.body.hidden = true;
    this.note ??= this.root.appendChild(el("p", { class: "muted absent-note" }));
    this.note.textContent = text;
  }

  render(payload) {
    this.last = payload;
    if (this.root.dataset.absent) { delete this.root.dataset.absent; this.body.hidden = false; this.note.textContent = ""; }
    // a tree of filters needs the width of the page (its leaves side by side)
    if (payload?.layout?.type === "tree") this.root.classList.add("wide");
    return this.renderer.render(this.state, payload);
  }

  enlarge(on) {
    if (on && enlarged && enlarged !== this) enlarged.enlarge(false);
    const canvas = this.state.canvas;
    this.root.classList.toggle("enlarged", on);
    document.body.classList.toggle("panel-enlarged", on);
    this.zoomBtn.textContent = on ? "✕ Close (Esc)" : "⤢ Enlarge";
    enlarged = on ? this : null;
    if (on) {
      const [w, h] = canvas.__logical ?? [canvas.width || 1, canvas.height || 1];
      // the room the window leaves: less the panel's padding (the timeline sits in it), head and info lines
      const pad = getComputedStyle(this.root);
      const roomW = this.root.clientWidth - parseFloat(pad.paddingLeft) - parseFloat(pad.paddingRight);
      const others = this.head.offsetHeight + this.body.offsetHeight - canvas.getBoundingClientRect().height;
      const roomH = window.innerHeight - parseFloat(pad.paddingTop) - parseFloat(pad.paddingBottom) - others - 8;
      const css = Math.max(1, Math.min(roomW / w, roomH / h, 8));
      canvas.__zoom = { css, dpr: window.devicePixelRatio || 1 };
    } else {
      delete canvas.__zoom;
    }
    this.root.dataset.zoom = on ? canvas.__zoom.css.toFixed(2) : "";
    if (this.last) this.render(this.last);
  }

  close() { if (enlarged === this) this.enlarge(false); }
}
