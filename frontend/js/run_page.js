// A run's page: header with progress, the live panels, the loss curves and a step slider.
// History comes from the store (metrics only; panels on demand); live frames arrive over SSE.
import { api, el, formatDuration } from "./api.js";
import { Curves } from "./curves.js";
import { RENDERERS } from "./panels/index.js";
import { runTools } from "./share.js";

const ACTIVE = new Set(["queued", "running"]);

export class RunPage {
  static async open(view, id) {
    const page = new RunPage(view, id);
    await page.load();
    return page;
  }

  constructor(view, id) {
    this.view = view;
    this.id = id;
    this.steps = []; // steps of every known frame, in order
    this.panels = {}; // kind → renderer state
    this.following = true; // show the newest frame until the user scrubs
    this.source = null;
  }

  async load() {
    this.run = await api.run(this.id);
    this.build();
    let from = 0, cursor = null, last = null;
    for (;;) { // page through the whole metric history (no images)
      const page = await api.frames(this.id, { panels: false, from_step: from, limit: 5000 });
      this.curves.append(page.frames);
      for (const f of page.frames) { this.steps.push(f.step); cursor = f.event_id; last = f; }
      if (page.next_from_step == null) break;
      from = page.next_from_step;
    }
    this.updateSlider();
    if (last) await this.showStep(last.step);
    if (ACTIVE.has(this.run.status)) this.listen(cursor ?? "0-0");
  }

  build() {
    const r = this.run;
    this.statusEl = el("span", { class: `status ${r.status}`, id: "run-status" }, r.status);
    this.bar = el("div", {});
    this.stepEl = el("span", { id: "run-step" });
    this.etaEl = el("span", { id: "run-eta", class: "meta" });
    this.cancelBtn = el("button", { class: "danger", id: "cancel" }, "Cancel");
    this.cancelBtn.addEventListener("click", () => this.cancel());
    this.errorEl = el("div", { class: "error", id: "run-error" }, r.error ?? "");
    const head = el("div", { class: "run-head" },
      el("h2", {}, r.title), this.statusEl, el("div", { class: "progress" }, this.bar), this.stepEl, this.etaEl,
      this.cancelBtn, el("a", { href: api.authUrl(`/api/runs/${r.id}/weights.npz`), download: "" }, "weights.npz"), runTools(r));
    this.slider = el("input", { type: "range", min: 0, max: 0, value: 0, id: "timeline", style: "width:100%" });
    this.slider.addEventListener("input", () => {
      this.following = false;
      this.showStep(this.steps[+this.slider.value]);
    });
    this.liveBtn = el("button", { id: "live" }, "Live");
    this.liveBtn.addEventListener("click", () => { this.following = true; this.showStep(this.steps.at(-1)); });
    this.cursorEl = el("span", { class: "muted", id: "cursor-step" });
    const left = el("div", { class: "panel" });
    for (const kind of Object.keys(RENDERERS)) {
      const box = el("div", { "data-kind": kind });
      left.append(el("h3", {}, RENDERERS[kind].title), box);
      this.panels[kind] = RENDERERS[kind].create(box);
    }
    const right = el("div", { class: "panel" }, el("h3", {}, "Loss"));
    this.curves = new Curves(right);
    this.view.replaceChildren(head, this.errorEl,
      el("div", { class: "panel", style: "margin-bottom:1em;display:flex;gap:1em;align-items:center" },
        this.cursorEl, this.slider, this.liveBtn),
      el("div", { class: "panels" }, left, right));
    this.updateHeader(r.step, r.total_steps, r.wall_time);
  }

  updateHeader(step, total, wallTime) {
    this.bar.style.width = `${(100 * step / Math.max(total, 1)).toFixed(1)}%`;
    this.stepEl.textContent = `step ${step} / ${total}`;
    const eta = step > 0 && this.run.status === "running" ? wallTime / step * (total - step) : null;
    this.etaEl.textContent = `elapsed ${formatDuration(wallTime)} · ETA ${formatDuration(eta)}`;
    this.cancelBtn.disabled = !ACTIVE.has(this.run.status);
  }

  setStatus(status, error) {
    this.run.status = status;
    this.statusEl.textContent = status;
    this.statusEl.className = `status ${status}`;
    if (error) this.errorEl.textContent = error;
    this.cancelBtn.disabled = !ACTIVE.has(status);
  }

  updateSlider() {
    this.slider.max = Math.max(this.steps.length - 1, 0);
    if (this.following) this.slider.value = this.slider.max;
  }

  renderPanels(step, panels) {
    this.cursorEl.textContent = `step ${step}`;
    for (const [kind, payload] of Object.entries(panels ?? {})) {
      if (this.panels[kind]) RENDERERS[kind].render(this.panels[kind], { ...payload, step });
    }
  }

  async showStep(step) {
    if (step == null) return;
    const page = await api.frames(this.id, { from_step: step, to_step: step, limit: 1 });
    if (page.frames.length) this.renderPanels(step, page.frames[0].panels);
  }

  listen(cursor) {
    this.source = new EventSource(api.authUrl(`/api/runs/${this.id}/events?after=${cursor}`));
    this.source.addEventListener("frame", (ev) => {
      const frame = JSON.parse(ev.data);
      if (this.run.status === "queued") this.setStatus("running");
      this.steps.push(frame.step);
      this.updateSlider();
      this.curves.append([frame]);
      this.updateHeader(frame.step, frame.total_steps, frame.wall_time);
      if (this.following) this.renderPanels(frame.step, frame.panels);
    });
    this.source.addEventListener("status", (ev) => {
      const s = JSON.parse(ev.data);
      this.setStatus(s.status, s.error);
      if (!ACTIVE.has(s.status)) { this.source.close(); this.source = null; }
    });
  }

  async cancel() {
    this.cancelBtn.disabled = true;
    try {
      await api.cancel(this.id);
    } catch (err) {
      this.errorEl.textContent = err.message;
    }
  }

  close() {
    this.source?.close();
  }
}
