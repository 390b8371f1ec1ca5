// Hash router: #/ is the run list and launcher, #/runs/<id> a run's page.
import { api, el, formatDuration } from "./api.js";
import { RunPage } from "./run_page.js";
import { bearer, consumeHashToken } from "./auth.js";
import { comparePage } from "./compare_page.js";
import { clonePage, sharedLanding } from "./share.js";
import { listPage } from "./list_page.js";
import { adminPage } from "./admin_page.js";
import { importPage } from "./import_page.js";
import { sweepPage } from "./sweep_page.js";

const view = document.getElementById("view");
let current = null; // the page object that owns timers / event sources

function statusCell(run) {
  return el("span", { class: `status ${run.status}` }, run.status);
}

export function progressBar(fraction) {
  const bar = el("div", { class: "progress" }, el("div", { style: `width:${(100 * fraction).toFixed(1)}%` }));
  return bar;
}

// Header links by who the token is (GET /api/me): Admin for admins, Import for writers.
let navFor;
async function updateNav() {
  const token = bearer();
  if (token === navFor) return;
  navFor = token;
  let me = null;
  try { me = await api.me(); } catch { /* an invalid token: neither link */ }
  document.getElementById("nav-admin").hidden = !me?.is_admin;
  document.getElementById("nav-import").hidden = !me?.can_write;
}

async function route() {
  current?.close();
  current = null;
  consumeHashToken(); // #/login?token=… and #/share/<token>: stored, then stripped from the address
  updateNav();
  const m = location.hash.match(/^#\/runs\/([0-9a-f]{32})/);
  const compare = location.hash.match(/^#\/compare(?:\/([0-9a-f,]*))?$/);
  const clone = location.hash.match(/^#\/clone\/([0-9a-f]{32})$/);
  const sweep = location.hash.match(/^#\/sweeps\/([0-9a-f]{12})$/);
  try {
    if (location.hash === "#/shared") { current = await sharedLanding(); return; }
    if (compare) { current = await comparePage(view, compare[1]); return; }
    if (clone) { current = await clonePage(view, clone[1]); return; }
    if (sweep) { current = await sweepPage(view, sweep[1]); return; }
    if (location.hash === "#/admin") { current = await adminPage(view); return; }
    if (location.hash === "#/import") { current = await importPage(view); return; }
    current = m ? await RunPage.open(view, m[1]) : await listPage(view);
  } catch (err) {
    view.replaceChildren(el("div", { class: "error" }, `Could not load: ${err.message}`));
  }
}

window.addEventListener("hashchange", route);
route();
