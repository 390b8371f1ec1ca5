// The home page: preset cards (thumbnail + one line of what the user will see), the launch form
// generated from the config schema, and the run list (status, progress + ETA, model, data set,
// key metrics, a small live thumbnail of the filters).
import { api, el, formatDuration } from "./api.js";
import { LaunchForm } from "./launch_form.js";

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

function metricsText(metrics) {
  const shown = KEY_METRICS.filter((k) => metrics[k] != null).map((k) => `${k} ${(+metrics[k]).toPrecision(3)}`);
  return shown.length ? shown.join(" · ") : "–";
}

export async function listPage(view) {
  const root = el("div", { id: "list-page" });
  view.replaceChildren(root);
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
    edit.addEventListener("click", () => { select(p, card); form.root.scrollIntoView({ behavior: "smooth" }); });
    cards.append(card);
  }
  const formTitle = el("h2", {}, "Configure a run");
  if (presets.length) select(presets[0], cards.firstChild);
  const table = el("table", { class: "runs" });
  root.append(el("h2", {}, "Launch a run"), cards, formTitle, form.root, el("h2", {}, "Runs"), table);

  const thumbs = new Map(); // run id → {step, src}: a finished run's thumbnail is fetched once
  async function thumbnail(run, img) {
    const known = thumbs.get(run.id);
    if (known && (known.step === run.step || run.status !== "running")) { img.src = known.src; return; }
    if (!run.frame_count) return;
    const page = await api.frames(run.id, { from_step: run.step, limit: 1 });
    const fg = page.frames[0]?.panels?.filter_grid;
    if (!fg) return;
    const src = `data:image/png;base64,${fg.atlas_png}`;
    thumbs.set(run.id, { step: run.step, src });
    img.src = src;
  }

  async function refresh() {
    const runs = await api.runs();
    const head = el("tr", {}, ...["", "Run", "Status", "Progress", "ETA", "Model", "Data", "Metrics", "Created"].map((h) => el("th", {}, h)));
    const rows = runs.map((r) => {
      const img = el("img", { class: "run-thumb", alt: "" });
      thumbnail(r, img).catch(() => {});
      const pct = (100 * r.progress).toFixed(1);
      return el("tr", { "data-run": r.id },
        el("td", {}, img),
        el("td", {}, el("a", { href: `#/runs/${r.id}` }, r.title)),
        el("td", {}, el("span", { class: `status ${r.status}` }, r.status)),
        el("td", {}, el("div", { class: "progress" }, el("div", { style: `width:${pct}%` })), ` ${r.step}/${r.total_steps}`),
        el("td", { "data-eta": "" }, r.status === "running" ? formatDuration(r.eta_seconds) : "–"),
        el("td", {}, describeModel(r.config)),
        el("td", {}, describeData(r.config)),
        el("td", { class: "metrics" }, metricsText(r.metrics || {})),
        el("td", { class: "muted" }, new Date(r.created_at).toLocaleString()));
    });
    table.replaceChildren(head, ...(rows.length ? rows : [el("tr", {}, el("td", { colspan: 9, class: "muted" }, "No runs yet."))]));
  }
  await refresh();
  const timer = setInterval(() => refresh().catch(() => {}), 2000);
  return { close: () => clearInterval(timer) };
}
