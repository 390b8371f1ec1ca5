// Hash router: #/ is the run list and launcher, #/runs/<id> a run's page.
import { api } from "./api.js";
import { el } from "./dom.js";
import { RunPage } from "./run_page.js";
import { bearer, consumeHashToken, isShareView, setShare } from "./auth.js";
import { comparePage } from "./compare_page.js";
import { clonePage, sharedLanding } from "./share.js";
import { listPage } from "./list_page.js";
import { adminPage } from "./admin_page.js";
import { workersPage } from "./workers_page.js";
import { importPage } from "./import_page.js";
import { sweepPage } from "./sweep_page.js";
import { installShortcuts } from "./shortcuts.js";

const view = document.getElementById("view");
let current = null; // the page object that owns timers / event sources

// Header links by who the token is (GET /api/me): Admin for admins, Import for writers. A share-link
// viewer reaches one run only: no Compare (it would fail), and the brand leads back to that run.
let navFor;
async function updateNav() {
  const token = bearer();
  const shared = isShareView();
  document.getElementById("nav-compare").hidden = shared;
  document.querySelector("header .brand").setAttribute("href", shared ? shareHash() : "#/");
  if (token === navFor) return;
  navFor = token;
  let me = null;
  try { me = await api.me(); } catch { /* an invalid token: neither link */ }
  document.getElementById("nav-admin").hidden = !me?.is_admin;
  document.getElementById("nav-workers").hidden = !me || me.kind === "share" || me.kind === "anonymous";
  document.getElementById("nav-import").hidden = !me?.can_write;
}

const SHARE_ROUTE = /^#\/share\/([A-Za-z0-9_-]{10,200})$/;
function shareHash() { return `#/share/${sessionStorage.getItem("pinwheel.share")}`; }

// `#/share/<token>`: the run the link opens, with the link itself left in the address bar, so the
// URL a viewer copies from there works for the next person (the token is what a share link is).
// /api/me is asked with the share token itself: a logged-in member opening a link gets its run too.
async function sharePage(token) {
  setShare(token);
  const res = await fetch("/api/me", { headers: { Authorization: `Bearer ${token}` } });
  const me = res.ok ? await res.json() : null;
  if (me?.kind !== "share" || !me.run_id) throw new Error("this share link is invalid, expired or revoked");
  return RunPage.open(view, me.run_id);
}

async function route() {
  current?.close();
  current = null;
  const share = location.hash.match(SHARE_ROUTE);
  if (share) {
    setShare(share[1]);
    updateNav();
    try { current = await sharePage(share[1]); } catch (err) {
      view.replaceChildren(el("div", { class: "error" }, `Could not load: ${err.message}`));
    }
    return;
  }
  consumeHashToken(); // #/login?token=… and #/share/<token>: stored, then stripped from the address
  updateNav();
  const m = location.hash.match(/^#\/runs\/([0-9a-f]{32})/);
  const compare = location.hash.match(/^#\/compare(?:\/([0-9a-f,]*))?$/);
  const clone = location.hash.match(/^#\/clone\/([0-9a-f]{32})$/);
  const sweep = location.hash.match(/^#\/sweeps\/([0-9a-f]{12})$/);
  // a share viewer on its run's `#/runs/<id>` (an old landing) gets the link that works when passed on
  if (m && isShareView()) history.replaceState(null, "", location.pathname + shareHash());
  try {
    if (location.hash === "#/shared") { current = await sharedLanding(); return; }
    if (compare) { current = await comparePage(view, compare[1]); return; }
    if (clone) { current = await clonePage(view, clone[1]); return; }
    if (sweep) { current = await sweepPage(view, sweep[1]); return; }
    if (location.hash === "#/admin") { current = await adminPage(view); return; }
    if (location.hash === "#/workers") { current = await workersPage(view); return; }
    if (location.hash === "#/import") { current = await importPage(view); return; }
    current = m ? await RunPage.open(view, m[1]) : await listPage(view);
  } catch (err) {
    view.replaceChildren(el("div", { class: "error" }, `Could not load: ${err.message}`));
  }
}

installShortcuts();
window.addEventListener("hashchange", route);
route();
