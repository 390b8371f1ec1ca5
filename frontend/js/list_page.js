// The home page: preset cards (thumbnail + one line of what the user will see), the launch form
// generated from the config schema, and the run list (status, progress + ETA, model, data set,
// key metrics, a small live thumbnail of the filters).
import { api } from "./api.js";
import { el, formatDuration } from "./dom.js";
import { RUNNING, STATUSES } from "./statuses.js";
import { LaunchForm } from "./launch_form.js";
import { resultLine } from "./results_card.js";
import { bearer } from "./auth.js";

const KEY_METRICS = ["loss", "reconstruction", "active_fraction", "test_error"];

// A small picture of what the preset grows: hue-coded orientation patches for topographic models,
// grey edge tiles otherwise (drawn, so it exists before any run of the preset).
function presetThumb(preset) {
  const c = el("canvas", { class: "thumb", width: 96, height: 96 });
  const ctx = c.getContext("2d");
  const groups = preset.config.model?.groups?.kind;
  const n = 8, s = 12;
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) {
    const theta = groups === "torus_2d" ? Math.atan2(i - 3.5, j - 3.5) / 2 + Math.PI : ((i * 7 + j * 3) % 8) * Math.PI / 8;
    if (groups === "torus_2d") ctx.fillStyle = `hsl(${(theta * 180 / Math.PI * 2) % 360},70%,55%)`;
    else ctx.fillStyle = "#555";
    ctx.fillRect(j * s, i * s, s, s);
    ctx.strokeStyle = groups === "torus_2d" ? "rgba(0,0,0,.6)" : "#eee";
    ctx.lineWidth = 2;
    ctx.beginPath();
    ctx.moveTo(j * s + s / 2 - 4 * Math.cos(theta), i * s + s / 2 - 4 * Math.sin(theta));
    ctx.lineTo(j * s + s / 2 + 4 * Math.cos(theta), i * s + s / 2 + 4 * Math.sin(theta));
    ctx.stroke();
  }
  return c;
}

function describeModel(config) {
  const m = config.model || {};
  const parts = [m.kind];
  if (m.units) parts.push(`${m.units} units`);
  if (m.groups?.kind) parts.push(m.groups.kind);
  return parts.join(" · ");
}

function describeData(config) {
  const d = config.data || {};
  const size = d.patch_size ? ` ${d.patch_size}×${d.patch_size}` : d.image_size ? ` ${d.image_size}×${d.image_size}` : "";
  return `${d.kind}${size}`;
}

// The run's Results card in one line (its numbers with what they were measured on in the tooltip);
// the raw key metrics stay below it for runs of any kind.
function resultCell(run) {
  const line = resultLine(run);
  return el("td", { class: "metrics", "data-result": "" }, el("div", { class: "result-line", title: line.title }, line.text),
    el("div", { class: "muted" }, metricsText(run.metrics || {})));
}

function metricsText(metrics) {
  const shown = KEY_METRICS.filter((k) => metrics[k] != null).map((k) => `${k} ${(+metrics[k]).toPrecision(3)}`);
  return shown.length ? shown.join(" · ") : "–";
}


// Search and filters above the run list (GET /api/runs?q=&tag=&status=&launched_by=), kept in
// the address (`#/?q=…&tag=…`) so a filtered list can be reloaded or linked to.
function filterBar(onChange) {
  const start = new URLSearchParams(location.hash.includes("?") ? location.hash.slice(location.hash.indexOf("?") + 1) : "");
  const input = (id, key, placeholder, list) => el("input", { id, type: "search", placeholder, value: start.get(key) ?? "", ...(list ? { list } : {}) });
  const q = input("filter-q", "q", "search name, notes, preset");
  const tag = input("filter-tag", "tag", "tags, comma separated", "filter-tag-options");
  tag.value = tag.value.split(",").map((t) => t.trim()).filter(Boolean).join(", ");
  const by = input("filter-launched-by", "launched_by", "launched by", "filter-by-options");
  const status = el("select", { id: "filter-status" }, el("option", { value: "" }, "any status"),
    ...STATUSES.map((v) => el("option", { value: v }, v)));
  status.value = STATUSES.includes(start.get("status")) ? start.get("status") : "";
  const tagOptions = el("datalist", { id: "filter-tag-options" });
  const byOptions = el("datalist", { id: "filter-by-options" });
  const shown = el("span", { class: "muted", id: "filter-count" });
  const clear = el("button", { id: "filter-clear", type: "button" }, "Clear");
  const seenTags = new Set(), seenBy = new Set();

  const tags = () => tag.value.split(",").map((t) => t.trim()).filter(Boolean);
  function params() {
    const p = new URLSearchParams();
    if (q.value.trim()) p.set("q", q.value.trim());
    for (const t of tags()) p.append("tag", t);
    if (status.value) p.set("status", status.value);
    if (by.value.trim()) p.set("launched_by", by.value.trim());
    return p;
  }
  const active = () => [...params().keys()].length > 0;
  let timer = null;
  function changed(now = false) {
    clearTimeout(timer);
    const go = () => {
      const p = new URLSearchParams(params());
      if (p.has("tag")) { p.delete("tag"); p.set("tag", tags().join(",")); } // one comma list in the address
      const qs = p.toString();
      history.replaceState(null, "", `${location.pathname}#/${qs ? `?${qs}` : ""}`);
      clear.disabled = !active();
      onChange();
    };
    if (now) go(); else timer = setTimeout(go, 250);
  }
  for (const box of [q, tag, by]) box.addEventListener("input", () => changed());
  status.addEventListener("change", () => changed(true));
  clear.addEventListener("click", () => { q.value = tag.value = by.value = status.value = ""; changed(true); });
  clear.disabled = !active();

  function learn(runs) { // suggestions: every tag and launcher seen so far
    const add = (set, list, v) => { if (v && !set.has(v)) { set.add(v); list.append(el("option", { value: v })); } };
    for (const r of runs) { for (const t of r.tags ?? []) add(seenTags, tagOptions, t); add(seenBy, byOptions, r.launched_by); }
  }
  function tagChip(t) {
    const chip = el("button", { type: "button", class: "tag", "data-tag": t, title: `show runs tagged ${t}` }, t);
    chip.addEventListener("click", () => { if (!tags().includes(t)) tag.value = [...tags(), t].join(", "); changed(true); });
    return chip;
  }
  const root = el("div", { class: "filters", id: "run-filters" }, q, tag, status, by, clear, shown, tagOptions, byOptions);
  return { root, params, active, learn, tagChip, count: (n) => { shown.textContent = active() ? `${n} matching` : `${n} runs`; } };
}

// A visitor without a token (GET /api/me: anonymous) is told how to get in, not only refused.
function loginHelp() {
  const example = `${location.origin}${location.pathname}#/login?token=…`;
  return el("div", { class: "panel login-help", id: "login-help" },
    el("h2", {}, "Log in to see and launch runs"),
    el("p", {}, "Pinwheel needs a token. Open the login URL that ", el("code", {}, "make run"),
      " printed in its terminal, of the form ", el("code", {}, example), "."),
    el("p", {}, "No such URL? Ask a lab admin for a member token (Admin page → new member), then open ",
      el("code", {}, "#/login?token=<your token>"), " on this site."),
    el("p", { class: "muted" }, "Got a share link instead? Open it as it is: it shows its one run without logging in."));
}

export async function listPage(view) {
  const root = el("div", { id: "list-page" });
  view.replaceChildren(root);
  if (!localStorage.getItem("pinwheel.token")) {
    let me = null;
    try { me = await api.me(); } catch { /* shown as logged out */ }
    if (!bearer() || !me || me.kind === "anonymous") { root.append(loginHelp()); return { close() {} }; }
  }
  const [presets, schema] = await Promise.all([api.presets(), api.schema()]);
  const form = new LaunchForm(schema, {
    onSubmit: async (body) => { const run = await api.launch(body); location.hash = `#/runs/${run.id}`; },
  });
  const cards = el("div", { class: "cards" });
  let selected = null;
  const select = (p, card) => {
    selected?.classList.remove("selected");
    card.classList.add("selected");
    selected = card;
    form.load(p.config, p.id);
    formTitle.textContent = `Configure: ${p.title}`;
  };
  for (const p of presets) {
    const launch = el("button", { class: "primary", "data-preset": p.id }, "Launch");
    const edit = el("button", { "data-configure": p.id }, "Configure…");
    const card = el("div", { class: "card", "data-preset-card": p.id },
      el("div", { class: "card-top" }, presetThumb(p), el("div", {}, el("h3", {}, p.title), el("p", {}, p.description))),
      el("div", { class: "card-actions" }, launch, edit));
    launch.addEventListener("click", async () => {
      launch.disabled = true;
      try {
        const run = await api.launch({ preset: p.id });
        location.hash = `#/runs/${run.id}`;
      } catch (err) {
        launch.disabled = false;
        card.append(el("div", { class: "error" }, err.message));
      }
    });
    edit.addEventListener("click", () => { select(p, card); newRun.open = true; form.root.scrollIntoView({ behavior: "smooth" }); });
    cards.append(card);
  }
  const formTitle = el("h2", {}, "Configure a run");
  if (presets.length) select(presets[0], cards.firstChild);
  const table = el("table", { class: "runs" });
  const filters = filterBar(() => refresh().catch(() => {}));
  // runs first; the preset cards and the launch form one click away (collapsed until asked for)
  const newRun = el("details", { id: "new-run", class: "new-run" },
    el("summary", { id: "new-run-toggle" }, el("span", { class: "button-like primary" }, "+ New run"),
      el("span", { class: "muted" }, ` ${presets.length} presets or your own configuration`)),
    el("h2", {}, "Launch a run"), cards, formTitle, form.root);
  root.append(el("div", { class: "list-head" }, el("h2", {}, "Runs"), newRun), filters.root, table);

  const thumbs = new Map(); // run id → {step, src}: a finished run's thumbnail is fetched once
  async function thumbnail(run, img) {
    const known = thumbs.get(run.id);
    if (known && (known.step === run.step || run.status !== RUNNING)) { img.src = known.src; return; }
    if (!run.frame_count) return;
    const page = await api.frames(run.id, { from_step: run.step, limit: 1 });
    const fg = page.frames[0]?.panels?.filter_grid;
    if (!fg) return;
    const src = `data:image/png;base64,${fg.atlas_png}`;
    thumbs.set(run.id, { step: run.step, src });
    img.src = src;
  }

  let asked = 0; // a slow answer to an older filter must not overwrite a newer one
  async function refresh() {
    const ask = ++asked;
    const runs = await api.runs(filters.params());
    if (ask !== asked) return;
    filters.learn(runs);
    const head = el("tr", {}, ...["", "Run", "Status", "Progress", "ETA", "Model", "Data", "Result", "By", "Created"].map((h) => el("th", {}, h)));
    const rows = runs.map((r) => {
      const img = el("img", { class: "run-thumb", alt: "" });
      thumbnail(r, img).catch(() => {});
      const pct = (100 * r.progress).toFixed(1);
      return el("tr", { "data-run": r.id },
        el("td", {}, img),
        el("td", { class: "run-name" }, el("a", { href: `#/runs/${r.id}` }, r.title),
          ...(r.tags?.length ? [el("div", { class: "tags" }, ...r.tags.map((t) => filters.tagChip(t)))] : [])),
        el("td", {}, el("span", { class: `status ${r.status}` }, r.status)),
        el("td", {}, el("div", { class: "progress" }, el("div", { style: `width:${pct}%` })), ` ${r.step}/${r.total_steps}`),
        el("td", { "data-eta": "" }, r.status === RUNNING ? formatDuration(r.eta_seconds) : "–"),
        el("td", {}, describeModel(r.config)),
        el("td", {}, describeData(r.config)),
        resultCell(r),
        el("td", { "data-launched-by": "" }, r.launched_by ?? "–"),
        el("td", { class: "muted" }, new Date(r.created_at).toLocaleString()));
    });
    const none = filters.active() ? "No runs match these filters." : "No runs yet.";
    filters.count(runs.length);
    table.replaceChildren(head, ...(rows.length ? rows : [el("tr", {}, el("td", { colspan: 10, class: "muted", id: "runs-empty" }, none))]));
  }
  await refresh();
  const timer = setInterval(() => refresh().catch(() => {}), 2000);
  return { close: () => clearInterval(timer) };
}
