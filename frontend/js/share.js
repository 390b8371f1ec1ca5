// Sharing and the run's record, as one header element of the run page (runTools), plus the
// "shared" landing route and the clone page. Write controls are hidden for share-link viewers
// (the server refuses them anyway).
import { api } from "./api.js";
import { el } from "./dom.js";
import { isShareView } from "./auth.js";

function fmt(v) { return v == null || v === "" ? "–" : typeof v === "object" ? JSON.stringify(v) : String(v); }

// A server time (UTC; SQLite drops the offset) in the reader's locale.
function parseTime(iso) { return new Date(/[zZ]|[+-]\d\d:?\d\d$/.test(iso) ? iso : `${iso}Z`); }
export function when(iso) {
  if (!iso) return "–";
  const d = parseTime(iso);
  return isNaN(d) ? String(iso) : d.toLocaleString();
}

// Copy to the clipboard; where the browser refuses, select the text in `input` for Ctrl+C.
export async function copyText(text, input, what = "link") {
  try { await navigator.clipboard.writeText(text); return `${what} copied`; } catch { /* below */ }
  input?.select();
  try { if (document.execCommand("copy")) return `${what} copied`; } catch { /* below */ }
  return `copy the ${what} above (Ctrl+C)`;
}

// Share tokens are shown once (the server keeps only their hash), so this browser remembers the
// links it created (share id → token and run) to hand out the same live link again.
const KNOWN = "pinwheel.sharelinks";
function knownLinks() {
  try { return JSON.parse(localStorage.getItem(KNOWN) || "{}") ?? {}; } catch { return {}; }
}
function saveKnown(known) { localStorage.setItem(KNOWN, JSON.stringify(known)); }
function linkUrl(token) { return `${location.origin}/#/share/${token}`; }

// The run's links from the server, with `url` where this browser knows a live one's token; dead
// links (revoked, expired) are forgotten here.
async function listLinks(runId) {
  const shares = await api.shares(runId);
  const known = knownLinks();
  for (const s of shares) if (known[s.id] && (!s.active || known[s.id].run !== runId)) delete known[s.id];
  saveKnown(known);
  return shares.map((s) => ({ ...s, url: known[s.id] ? linkUrl(known[s.id].token) : null }));
}

async function createLink(runId, body) {
  const s = await api.share(runId, body);
  const known = knownLinks();
  known[s.id] = { run: runId, token: s.token };
  saveKnown(known);
  return { ...s, url: linkUrl(s.token) };
}

// "Copy share link": a live link this browser made for the run (no expiry first, then the one
// that lives longest), or a new one without expiry.
async function liveLink(runId) {
  const usable = (await listLinks(runId)).filter((s) => s.active && s.url);
  const left = (s) => (s.expires_at ? parseTime(s.expires_at).getTime() : Infinity);
  usable.sort((a, b) => left(b) - left(a) || b.id - a.id);
  return usable[0] ?? await createLink(runId, { label: "copied from the run page" });
}

const EXPIRIES = [["", "never expires"], [3600, "expires in 1 hour"], [86400, "expires in 1 day"],
  [7 * 86400, "expires in 7 days"], [30 * 86400, "expires in 30 days"]];

// The run's share links: list (created, by, expiry, state), create with an optional expiry, revoke.
function shareManager(run, show) {
  const box = el("details", { id: "share-links", class: "popover" }, el("summary", {}, "Share links"));
  const label = el("input", { id: "share-label", placeholder: "label (who it is for)", maxlength: 200, size: 22 });
  const expiry = el("select", { id: "share-expiry" }, ...EXPIRIES.map(([v, t]) => el("option", { value: v }, t)));
  const create = el("button", { id: "share-create", class: "primary" }, "Create link");
  const msg = el("span", { class: "muted", id: "share-msg" });
  const table = el("table", { class: "runs compact", id: "share-table" });
  async function refresh() {
    const links = await listLinks(run.id);
    const head = el("tr", {}, ...["Label", "Created", "By", "Expires", "State", ""].map((h) => el("th", {}, h)));
    const rows = links.slice().reverse().map((s) => {
      const state = s.revoked_at ? `revoked ${when(s.revoked_at)}` : s.active ? "live" : "expired";
      const actions = el("td", { class: "actions" });
      if (s.active && s.url) {
        const copy = el("button", { "data-copy-share": s.id, title: s.url }, "Copy");
        copy.addEventListener("click", () => show(s.url));
        actions.append(copy);
      }
      if (s.active) {
        const revoke = el("button", { class: "danger", "data-revoke-share": s.id }, "Revoke");
        revoke.addEventListener("click", async () => {
          if (!confirm(`Revoke the share link${s.label ? ` "${s.label}"` : ""}? Whoever holds it loses access at once.`)) return;
          revoke.disabled = true;
          try { await api.revokeShare(run.id, s.id); msg.textContent = "link revoked"; await refresh(); }
          catch (err) { msg.textContent = err.message; revoke.disabled = false; }
        });
        actions.append(revoke);
      }
      return el("tr", { "data-share": s.id, "data-state": s.revoked_at ? "revoked" : s.active ? "live" : "expired" },
        el("td", {}, s.label || "–"), el("td", {}, when(s.created_at)), el("td", {}, s.created_by ?? "–"),
        el("td", {}, s.expires_at ? when(s.expires_at) : "never"),
        el("td", {}, el("span", { class: `status ${s.active ? "succeeded" : "cancelled"}` }, state)), actions);
    });
    table.replaceChildren(head, ...(rows.length ? rows : [el("tr", {}, el("td", { colspan: 6, class: "muted" }, "No share links yet."))]));
  }
  create.addEventListener("click", async () => {
    create.disabled = true;
    try {
      const body = { label: label.value.trim() };
      if (expiry.value) body.expires_in_seconds = +expiry.value;
      const s = await createLink(run.id, body);
      label.value = "";
      await show(s.url);
      await refresh();
    } catch (err) { msg.textContent = err.message; }
    finally { create.disabled = false; }
  });
  box.addEventListener("toggle", () => { if (box.open) refresh().catch((err) => { msg.textContent = err.message; }); });
  box.append(el("div", { class: "popover-body" },
    el("div", { class: "share-create" }, label, expiry, create, msg),
    el("p", { class: "muted" }, "A share link opens this run's live page read-only; it cannot reach other runs or change anything."),
    table));
  return { root: box, refresh: () => (box.open ? refresh() : Promise.resolve()) };
}

export function recordRows(run) {
  const env = run.environment ?? {}, prov = run.provenance ?? {}, code = env.code ?? prov.code ?? {};
  const version = code.git_commit ? `${code.git_commit.slice(0, 12)}${code.git_dirty ? " (dirty)" : ""}` : code.package_version;
  return [["launched by", run.launched_by], ["seed", prov.seed ?? run.config?.train?.seed], ["code", version],
    ["torch", env.torch], ["CUDA", env.cuda], ["device", env.device_name ? `${env.device} (${env.device_name})` : env.device],
    ["created", when(run.created_at)], ["started", when(run.started_at)], ["finished", when(run.finished_at)],
    ...(prov.imported ? [["imported from", `${prov.imported.from_run} by ${prov.imported.imported_by}`]] : [])];
}

export function runTools(run) {
  const readOnly = isShareView();
  const root = el("span", { class: "run-tools", id: "run-tools", style: "display:inline-flex;gap:.6em;align-items:center;flex-wrap:wrap" });
  const status = el("span", { class: "muted", id: "tools-status" });
  const shareOut = el("input", { id: "share-link", readonly: "", size: 40, style: "display:none" });
  const link = (id, path, text, title) => el("a", { id, href: api.authUrl(path), download: "", title }, text);
  const details = el("details", { id: "run-record" }, el("summary", {}, "Record & notes"));
  if (!readOnly) {
    const show = async (url) => {
      shareOut.value = url;
      shareOut.style.display = "";
      shareOut.select();
      status.textContent = await copyText(url, shareOut);
    };
    const manager = shareManager(run, show);
    const shareBtn = el("button", { id: "copy-share", title: "a read-only link to this run's live page (the same live link each time)" }, "Copy share link");
    shareBtn.addEventListener("click", async () => {
      shareBtn.disabled = true;
      try { await show((await liveLink(run.id)).url); await manager.refresh(); }
      catch (err) { status.textContent = err.message; }
      finally { shareBtn.disabled = false; }
    });
    root.append(shareBtn, shareOut, manager.root);
    if (run.provenance?.origin !== "external") { // a run of the user's own code has no preset config to launch again
      root.append(el("a", { id: "clone-run", href: `#/clone/${run.id}`, title: "the launch form with this run's config" }, "Clone"));
    }
  }
  root.append(link("export-html", `/api/runs/${run.id}/export.html`, "HTML", "a self-contained page that opens offline"),
    link("export-bundle", `/api/runs/${run.id}/bundle.zip`, "Bundle", "config, metrics, filters, weights, checkpoint"),
    status, details);
  fillRecord(details, run, readOnly);
  return root;
}

// which worker (host, device) ran each attempt, and how each ended (a lost worker, a shutdown, …)
function attemptsTable(run) {
  const rows = run.attempts ?? [];
  if (!rows.length) return el("p", { class: "muted", id: "run-attempts" }, "No attempt yet: the run waits in the queue.");
  const head = el("tr", {}, ...["Attempt", "Worker", "Device", "Started", "Resumed from", "Ended"].map((h) => el("th", {}, h)));
  return el("table", { class: "record", id: "run-attempts" }, head, ...rows.map((a) => el("tr", { "data-attempt": a.attempt },
    el("td", {}, String(a.attempt)), el("td", {}, a.worker ?? a.host ?? "–"), el("td", {}, a.device ?? "–"),
    el("td", {}, when(a.started_at)), el("td", {}, a.resumed_from_step == null ? "start" : `step ${a.resumed_from_step}`),
    el("td", {}, a.ended ? `${a.ended} (${when(a.ended_at)})` : "running"))));
}

function fillRecord(details, run, readOnly) {
  const table = el("table", { class: "record" }, ...recordRows(run).map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", {}, fmt(v)))));
  const tags = el("div", { id: "run-tags" }, ...(run.tags ?? []).map((t) => el("span", { class: "tag" }, t)));
  const notes = el("div", { id: "run-notes", class: "notes" });
  notes.innerHTML = run.notes_html ?? ""; // sanitised server-side (backend/app/markdown.py)
  details.append(tags, notes, table, attemptsTable(run));
  if (readOnly) return;
  const name = el("input", { id: "edit-title", value: run.title, size: 30 });
  const tagIn = el("input", { id: "edit-tags", value: (run.tags ?? []).join(", "), placeholder: "tags, comma separated" });
  const text = el("textarea", { id: "edit-notes", rows: 5, cols: 60, placeholder: "notes (Markdown)" });
  text.value = run.notes ?? "";
  const msg = el("span", { class: "muted" });
  const save = el("button", { id: "save-notes" }, "Save");
  save.addEventListener("click", async () => {
    try {
      const out = await api.edit(run.id, { title: name.value, tags: tagIn.value.split(",").map((t) => t.trim()).filter(Boolean), notes: text.value });
      notes.innerHTML = out.notes_html;
      tags.replaceChildren(...out.tags.map((t) => el("span", { class: "tag" }, t)));
      msg.textContent = "saved";
    } catch (err) { msg.textContent = err.message; }
  });
  const del = el("button", { class: "danger", id: "delete-run" }, "Delete run");
  del.addEventListener("click", async () => {
    if (!confirm(`Delete "${run.title}" with its frames and files? This cannot be undone.`)) return;
    try { await api.remove(run.id); location.hash = "#/"; } catch (err) { msg.textContent = err.message; }
  });
  details.append(el("div", { class: "edit" }, name, tagIn, text, save, del, msg));
}

// `#/shared` (an older landing): the share token is in sessionStorage; go to the link itself,
// `#/share/<token>`, whose address works when passed on (a `#/runs/<id>` does not without a token)
export async function sharedLanding() {
  const token = sessionStorage.getItem("pinwheel.share");
  if (!token) throw new Error("this share link is invalid, expired or revoked");
  location.replace(`#/share/${token}`);
  return { close() {} };
}

// `#/clone/<id>`: the launch form, filled with the run's config
export async function clonePage(view, id) {
  const { LaunchForm } = await import("./launch_form.js");
  const [run, schema] = await Promise.all([api.run(id), fetch("/api/schema").then((r) => r.json())]);
  const form = new LaunchForm(schema, {
    onSubmit: async (body) => {
      const created = await api.launch({ ...body, title: `${run.title} (clone)` });
      location.hash = `#/runs/${created.id}`;
    },
  });
  form.load(run.config, null);
  view.replaceChildren(el("h2", {}, `Clone of ${run.title}`), form.root);
  return { close() {} };
}
