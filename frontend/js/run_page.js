// A run's page: header with progress, one timeline driving every panel, the panels, the curves.
// History comes from the store (metrics only); panel payloads are fetched on demand around the
// timeline's cursor into a small LRU cache (never the whole history in the tab); live frames
// arrive over SSE and are shown while the page follows the run (until the user scrubs).
import { api } from "./api.js";
import { download, el, formatDuration } from "./dom.js";
import { Curves } from "./curves.js";
import { PanelBox } from "./panel_box.js";
import { QUEUED, RUNNING, isActive } from "./statuses.js";
import { RENDERERS } from "./panels/index.js";
import { runTools } from "./share.js";
import { isShareView } from "./auth.js";
import { ResultsCard } from "./results_card.js";

const CACHE_FRAMES = 32; // payloads kept in the tab (~50 KB each)
const SPEEDS = [1, 2, 5, 10, 20]; // frames a second when playing

export class FrameCache { // LRU: step → panels
  constructor(limit = CACHE_FRAMES) { this.limit = limit; this.map = new Map(); }
  get(step) {
    if (!this.map.has(step)) return undefined;
    const v = this.map.get(step);
    this.map.delete(step);
    this.map.set(step, v);
    return v;
  }
  has(step) { return this.map.has(step); }
  put(step, panels) {
    this.map.delete(step);
    this.map.set(step, panels);
    while (this.map.size > this.limit) this.map.delete(this.map.keys().next().value);
  }
  get size() { return this.map.size; }
}

// a queued run says where it stands: its place in its queue, and what no live worker offers
function queueNotice(r) {
  const place = r.queue_position ? `position ${r.queue_position} in the queue` : "in the queue";
  return `Queued: ${place}${r.waiting_for ? `, waiting for ${r.waiting_for}` : ""}.`;
}

export class RunPage {
  static async open(view, id) {
    const page = new RunPage(view, id);
    await page.load();
    return page;
  }

  constructor(view, id) {
    this.view = view;
    this.id = id;
    this.steps = []; // steps of every known frame, in order (numbers only)
    this.times = new Map(); // step → worker time of the frame (for the draw-latency record)
    this.index = -1; // the timeline's cursor into this.steps
    this.panels = {}; // kind → PanelBox
    this.cache = new FrameCache();
    this.following = true; // show the newest frame until the user scrubs
    this.playing = null; // interval id while playing
    this.speed = 5;
    this.inflight = null;
    this.source = null;
    this.draws = (window.__pinwheelDraws = []); // {step, time, drawn}: worker time → pixels on screen
    this.onKey = (ev) => this.key(ev);
  }

  async load() {
    this.run = await api.run(this.id);
    this.build();
    let from = 0, last = null;
    for (;;) { // page through the metric history (no images)
      const page = await api.frames(this.id, { panels: false, from_step: from, limit: 5000 });
      last = this.addFrames(page.frames) ?? last;
      if (page.next_from_step == null) break;
      from = page.next_from_step;
    }
    if (last && last.step >= this.run.step) this.results.update({ metrics: last.metrics, step: last.step });
    this.updateSlider();
    if (this.steps.length) this.show(this.steps.length - 1);
    if (isActive(this.run.status)) this.listen(last?.event_id ?? "0-0");
    document.addEventListener("keydown", this.onKey);
  }

  build() {
    const r = this.run;
    this.statusEl = el("span", { class: `status ${r.status}`, id: "run-status" }, r.status);
    this.bar = el("div", {});
    this.stepEl = el("span", { id: "run-step" });
    this.etaEl = el("span", { id: "run-eta", class: "meta" });
    this.cancelBtn = el("button", { class: "danger", id: "cancel", title: "stop this run (asks first)" }, "Cancel");
    this.cancelBtn.addEventListener("click", () => this.cancel());
    // a share-link viewer can change nothing, so gets no Cancel button (the server would refuse it)
    const cancelSlot = isShareView() ? [] : [this.cancelBtn];
    this.errorEl = el("div", { class: "error", id: "run-error" }, r.error ?? "");
    const head = el("div", { class: "run-head" },
      el("h2", {}, r.title), this.statusEl, el("div", { class: "progress" }, this.bar), this.stepEl, this.etaEl,
      ...cancelSlot, el("a", { href: api.authUrl(`/api/runs/${r.id}/weights.npz`), download: "" }, "weights.npz"), runTools(r));

    // the timeline
    const btn = (id, text, title, fn) => { const b = el("button", { id, title }, text); b.addEventListener("click", fn); return b; };
    this.backBtn = btn("step-back", "◀", "step back (←; Shift+← ten)", () => this.stepBy(-1));
    this.playBtn = btn("play", "▶ Play", "play / pause (space)", () => this.togglePlay());
    this.fwdBtn = btn("step-forward", "▶|", "step forward (→; Shift+→ ten)", () => this.stepBy(1));
    this.speedSel = el("select", { id: "speed", title: "frames a second when playing" },
      ...SPEEDS.map((s) => el("option", { value: s, ...(s === this.speed ? { selected: "" } : {}) }, `${s} fps`)));
    this.speedSel.addEventListener("change", () => { this.speed = +this.speedSel.value; if (this.playing) { this.pause(); this.play(); } });
    this.slider = el("input", { type: "range", min: 0, max: 0, value: 0, id: "timeline", title: "Home / End: first / last frame" });
    this.slider.addEventListener("input", () => { this.following = false; this.pause(); this.show(+this.slider.value); });
    this.liveBtn = btn("live", "● Live", "follow the newest frame (L)", () => this.goLive());
    this.cursorEl = el("span", { class: "muted", id: "cursor-step" }, "–");
    const timeline = el("div", { class: "timeline panel", id: "timeline-bar" },
      this.backBtn, this.playBtn, this.fwdBtn, this.speedSel, this.cursorEl, this.slider, this.liveBtn);

    this.panelGrid = el("div", { class: "panel-grid" });
    const right = el("div", { class: "panel curves-panel" });
    const csvBtn = btn("export-csv", "CSV", "download every curve point as CSV", () =>
      download(new Blob([this.curves.csv()], { type: "text/csv" }), `${this.id}-curves.csv`));
    const curvesHead = el("div", { class: "panel-head" }, el("h3", {}, "Curves"));
    right.append(curvesHead);
    this.curves = new Curves(right);
    curvesHead.append(this.curves.controls, csvBtn);
    this.panelGrid.append(right); // curves first, across the whole width; panels below as they arrive
    this.noticeEl = el("div", { class: "notice", id: "run-notice" });
    // the run's result first: its latest metrics now, the last frame's panels once they are fetched
    this.results = new ResultsCard(r);
    this.results.update({ metrics: r.metrics, step: r.frame_count ? r.step : null });
    if (r.status === QUEUED) this.noticeEl.textContent = queueNotice(r);
    this.view.replaceChildren(head, this.errorEl, this.noticeEl, this.results.root, timeline, this.panelGrid);
    this.updateHeader(r.step, r.total_steps, r.wall_time);
    this.updateLive();
  }

  panelFor(kind) { // boxes appear for the kinds the model's frames carry
    if (this.panels[kind]) return this.panels[kind];
    const renderer = RENDERERS[kind];
    if (!renderer) return null; // a kind this page does not know (a newer producer): skipped
    const box = new PanelBox(kind, renderer, { ctx: { runId: this.id, fetchBlob: api.fetchBlob,
      onError: (msg) => { this.errorEl.textContent = msg; } } });
    renderer.latency?.(box.state, (d) => {
      this.draws.push(d);
      if (this.draws.length > 2000) this.draws.splice(0, 1000);
    });
    this.panelGrid.append(box.root);
    return (this.panels[kind] = box);
  }

  updateHeader(step, total, wallTime) {
    this.progressNow = { step, total, wallTime };
    this.bar.style.width = `${(100 * step / Math.max(total, 1)).toFixed(1)}%`;
    this.stepEl.textContent = `step ${step} / ${total}`;
    this.updateEta();
    this.cancelBtn.disabled = this.cancelling || !isActive(this.run.status);
  }

  // An ETA only while the run is running and nobody has asked it to stop: a cancelled (or
  // cancelling) run will not reach its last step, so its header shows the elapsed time alone.
  updateEta() {
    const { step, total, wallTime } = this.progressNow ?? { step: 0, total: 0, wallTime: 0 };
    const elapsed = `elapsed ${formatDuration(wallTime)}`;
    if (this.cancelling && isActive(this.run.status)) this.etaEl.textContent = `${elapsed} · cancelling…`;
    else if (this.run.status === RUNNING) {
      const eta = step > 0 ? wallTime / step * (total - step) : null;
      this.etaEl.textContent = `${elapsed} · ETA ${formatDuration(eta)}`;
    } else this.etaEl.textContent = elapsed;
  }

  setStatus(status, error) {
    this.run.status = status;
    this.statusEl.textContent = status;
    this.statusEl.className = `status ${status}`;
    if (error) this.errorEl.textContent = error;
    this.cancelBtn.disabled = this.cancelling || !isActive(status);
    this.updateEta();
    this.updateLive();
  }

  updateLive() {
    this.liveBtn.classList.toggle("on", this.following);
    this.liveBtn.disabled = this.following && this.index === this.steps.length - 1;
    this.view.dataset.following = this.following ? "1" : "0";
  }

  updateSlider() {
    this.slider.max = Math.max(this.steps.length - 1, 0);
    if (this.index >= 0) this.slider.value = this.index;
  }

  // ---- the cursor -------------------------------------------------------------------------
  show(index) {
    if (!this.steps.length) return;
    this.index = Math.max(0, Math.min(this.steps.length - 1, index));
    const step = this.steps[this.index];
    this.slider.value = this.index;
    this.cursorEl.textContent = `step ${step} (${this.index + 1}/${this.steps.length})`;
    this.view.dataset.cursorStep = step;
    this.curves.setCursor(step);
    this.updateLive();
    const panels = this.cache.get(step);
    if (panels) this.renderPanels(step, panels);
    else this.fetchAround(step);
  }

  async fetchAround(step) {
    if (this.inflight) { this.wanted = step; return; } // latest wins: a fast scrub fetches only where it stops
    const ahead = this.playing ? 8 : 2;
    const i = this.steps.indexOf(step);
    const to = this.steps[Math.min(this.steps.length - 1, Math.max(i, 0) + ahead)] ?? step;
    this.inflight = api.frames(this.id, { from_step: step, to_step: to, limit: ahead + 1 });
    try {
      const page = await this.inflight;
      for (const f of page.frames) { this.cache.put(f.step, f.panels); this.times.set(f.step, f.time); }
      if (page.frames.length && !this.cache.has(step)) this.cache.put(step, page.frames[0].panels); // thinned away: nearest later frame
    } catch (err) {
      this.errorEl.textContent = `frames: ${err.message}`;
    } finally {
      this.inflight = null;
    }
    const current = this.steps[this.index];
    const wanted = this.wanted ?? current;
    this.wanted = undefined;
    if (wanted !== current) return this.fetchAround(current);
    const panels = this.cache.get(current);
    if (panels) this.renderPanels(current, panels);
    else if (wanted !== step) this.fetchAround(current);
  }

  renderPanels(step, panels) {
    if (step === this.steps.at(-1)) this.results.update({ panels, panelsStep: step });
    const time = this.times.get(step);
    for (const [kind, payload] of Object.entries(panels ?? {})) {
      this.panelFor(kind)?.render({ ...payload, step, time });
    }
  }

  stepBy(delta) { this.following = false; this.pause(); this.show(this.index + delta); }

  goLive() { this.following = true; this.pause(); this.show(this.steps.length - 1); }

  togglePlay() { if (this.playing) this.pause(); else this.play(); }

  play() {
    this.following = false;
    if (this.index >= this.steps.length - 1) this.show(0); // replay from the start
    this.playBtn.textContent = "❚❚ Pause";
    this.view.dataset.playing = "1";
    this.playing = setInterval(() => {
      if (this.index >= this.steps.length - 1) { this.pause(); return; }
      this.show(this.index + 1);
    }, 1000 / this.speed);
  }

  pause() {
    if (!this.playing) return;
    clearInterval(this.playing);
    this.playing = null;
    this.playBtn.textContent = "▶ Play";
    this.view.dataset.playing = "0";
  }

  key(ev) {
    const t = ev.target;
    if (t && (t.tagName === "INPUT" && t.type !== "range" || t.tagName === "TEXTAREA" || t.tagName === "SELECT")) return;
    const big = ev.shiftKey ? 10 : 1;
    const actions = {
      ArrowLeft: () => this.stepBy(-big), ArrowRight: () => this.stepBy(big), " ": () => this.togglePlay(),
      Home: () => { this.following = false; this.pause(); this.show(0); },
      End: () => { this.following = false; this.pause(); this.show(this.steps.length - 1); },
      l: () => this.goLive(), L: () => this.goLive(),
    };
    const fn = actions[ev.key];
    if (fn) { ev.preventDefault(); fn(); }
  }

  // Frames from the history (GET /frames) and from the event stream have one shape (pinwheel/
  // protocol.py Frame: step, time, wall_time, total_steps, event_id, metrics, and panels unless the
  // history was asked without them). New ones join the timeline and the curves; a replayed
  // duplicate (a step the page has) is dropped. Returns the newest frame taken, or null.
  addFrames(frames, live = false) {
    const fresh = frames.filter((f, i) => f.step > (i ? frames[i - 1].step : this.steps.at(-1) ?? -Infinity));
    if (!fresh.length) return null;
    for (const f of fresh) {
      this.steps.push(f.step);
      this.times.set(f.step, f.time);
      if (f.panels) this.cache.put(f.step, f.panels);
    }
    this.curves.append(fresh, { defer: live });
    return fresh.at(-1);
  }

  // ---- live ---------------------------------------------------------------------------------
  listen(cursor) {
    this.source = new EventSource(api.authUrl(`/api/runs/${this.id}/events?after=${cursor}`));
    this.source.addEventListener("frame", (ev) => {
      const frame = JSON.parse(ev.data);
      if (this.run.status === QUEUED) this.setStatus(RUNNING);
      if (!this.addFrames([frame], true)) return;
      this.updateSlider();
      this.results.update({ metrics: frame.metrics, step: frame.step, panels: frame.panels, panelsStep: frame.step });
      this.updateHeader(frame.step, frame.total_steps, frame.wall_time);
      if (this.following) this.show(this.steps.length - 1);
      else this.updateLive();
    });
    this.source.addEventListener("status", (ev) => {
      const s = JSON.parse(ev.data);
      if (s.status === RUNNING && (s.resumed_from_step != null || s.attempt > 1)) this.supersede(s);
      else if (s.status === QUEUED && s.reason) this.noticeEl.textContent = `Waiting for a worker: ${s.reason}.`;
      else if (s.status === RUNNING) this.noticeEl.textContent = ""; // out of the queue
      this.setStatus(s.status, s.error);
      if (!isActive(s.status)) { this.source.close(); this.source = null; }
    });
  }

  // A new attempt resumes from its checkpoint: the lost attempt's frames from there on are redone,
  // so they leave the timeline and the curves, and the page says why.
  supersede(s) {
    const from = s.resumed_from_step ?? 0;
    const dropped = this.steps.filter((step) => step >= from);
    if (dropped.length) {
      this.steps = this.steps.filter((step) => step < from);
      for (const step of dropped) { this.times.delete(step); this.cache.map.delete(step); }
      this.curves.truncate(from);
      this.updateSlider();
      if (this.index >= this.steps.length) this.show(this.steps.length - 1);
    }
    this.noticeEl.textContent = `Attempt ${s.attempt ?? "?"} on ${s.host ?? "a worker"}: resumed from step ${from}` +
      (s.attempt > 1 ? " after a lost worker" : "") + (dropped.length ? ` (${dropped.length} later frames redone).` : ".");
  }

  async cancel() {
    if (!confirm(`Cancel "${this.run.title}"? It stops at its next step and cannot be resumed.`)) return;
    this.cancelling = true; // the ETA goes at once: the run will not reach its last step
    this.cancelBtn.disabled = true;
    this.updateEta();
    try {
      const out = await api.cancel(this.id);
      if (!isActive(out.status)) this.setStatus(out.status, out.error);
    } catch (err) {
      this.cancelling = false;
      this.errorEl.textContent = err.message;
      this.cancelBtn.disabled = !isActive(this.run.status);
      this.updateEta();
    }
  }

  close() {
    for (const box of Object.values(this.panels)) box.close();
    this.pause();
    this.source?.close();
    document.removeEventListener("keydown", this.onKey);
  }
}
