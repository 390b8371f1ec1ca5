// Hash router: #/ is the run list and launcher, #/runs/<id> a run's page.
import { api, el, formatDuration } from "./api.js";
import { RunPage } from "./run_page.js";
import { consumeHashToken } from "./auth.js";
import { comparePage } from "./compare_page.js";
import { clonePage, sharedLanding } from "./share.js";

const view = document.getElementById("view");
let current = null; // the page object that owns timers / event sources

function statusCell(run) {
  return el("span", { class: `status ${run.status}` }, run.status);
}

export function progressBar(fraction) {
  const bar = el("div", { class: "progress" }, el("div", { style: `width:${(100 * fraction).toFixed(1)}%` }));
  return bar;
}

async function listPage() {
  const root = el("div", { id: "list-page" });
  view.replaceChildren(root);
  const presets = await api.presets();
  const cards = el("div", { class: "cards" });
  for (const p of presets) {
    const button = el("button", { class: "primary", "data-preset": p.id }, "Launch");
    button.addEventListener("click", async () => {
      button.disabled = true;
      try {
        const run = await api.launch({ preset: p.id });
        location.hash = `#/runs/${run.id}`;
      } catch (err) {
        button.disabled = false;
        card.append(el("div", { class: "error" }, err.message));
      }
    });
    const card = el("div", { class: "card" }, el("h3", {}, p.title), el("p", {}, p.description), button);
    cards.append(card);
  }
  const table = el("table", { class: "runs" });
  root.append(el("h2", {}, "Launch a run"), cards, el("h2", {}, "Runs"), table);

  async function refresh() {
    const runs = await api.runs();
    const head = el("tr", {}, ...["Run", "Status", "Progress", "ETA", "Loss", "Created"].map((h) => el("th", {}, h)));
    const rows = runs.map((r) => el("tr", { "data-run": r.id },
      el("td", {}, el("a", { href: `#/runs/${r.id}` }, r.title)),
      el("td", {}, statusCell(r)),
      el("td", {}, progressBar(r.progress), ` ${r.step}/${r.total_steps}`),
      el("td", {}, r.status === "running" ? formatDuration(r.eta_seconds) : "–"),
      el("td", {}, r.metrics.loss != null ? r.metrics.loss.toFixed(3) : "–"),
      el("td", { class: "muted" }, new Date(r.created_at).toLocaleString())));
    table.replaceChildren(head, ...(rows.length ? rows : [el("tr", {}, el("td", { colspan: 6, class: "muted" }, "No runs yet."))]));
  }
  await refresh();
  const timer = setInterval(refresh, 2000); // the list is small; the run page itself is pushed live
  return { close: () => clearInterval(timer) };
}

async function route() {
  current?.close();
  current = null;
  consumeHashToken(); // #/login?token=… and #/share/<token>: stored, then stripped from the address
  const m = location.hash.match(/^#\/runs\/([0-9a-f]{32})/);
  const compare = location.hash.match(/^#\/compare(?:\/([0-9a-f,]*))?$/);
  const clone = location.hash.match(/^#\/clone\/([0-9a-f]{32})$/);
  try {
    if (location.hash === "#/shared") { current = await sharedLanding(); return; }
    if (compare) { current = await comparePage(view, compare[1]); return; }
    if (clone) { current = await clonePage(view, clone[1]); return; }
    current = m ? await RunPage.open(view, m[1]) : await listPage();
  } catch (err) {
    view.replaceChildren(el("div", { class: "error" }, `Could not load: ${err.message}`));
  }
}

window.addEventListener("hashchange", route);
route();
