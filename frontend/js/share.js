// Sharing and the run's record, as one header element of the run page (runTools), plus the
// "shared" landing route and the clone page. Write controls are hidden for share-link viewers
// (the server refuses them anyway).
import { api, el } from "./api.js";
import { isShareView } from "./auth.js";

function fmt(v) { return v == null || v === "" ? "–" : typeof v === "object" ? JSON.stringify(v) : String(v); }

export function recordRows(run) {
  const env = run.environment ?? {}, prov = run.provenance ?? {}, code = env.code ?? prov.code ?? {};
  const version = code.git_commit ? `${code.git_commit.slice(0, 12)}${code.git_dirty ? " (dirty)" : ""}` : code.package_version;
  return [["launched by", run.launched_by], ["seed", prov.seed ?? run.config?.train?.seed], ["code", version],
    ["torch", env.torch], ["CUDA", env.cuda], ["device", env.device_name ? `${env.device} (${env.device_name})` : env.device],
    ["created", run.created_at], ["started", run.started_at], ["finished", run.finished_at],
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
    const shareBtn = el("button", { id: "copy-share", title: "a read-only link to this run's live page" }, "Copy share link");
    shareBtn.addEventListener("click", async () => {
      try {
        const s = await api.share(run.id, { label: "copied from the run page" });
        const url = `${location.origin}${s.path}`;
        shareOut.value = url;
        shareOut.style.display = "";
        shareOut.select();
        try { await navigator.clipboard.writeText(url); status.textContent = "link copied"; }
        catch { status.textContent = "copy the link above"; }
      } catch (err) { status.textContent = err.message; }
    });
    const clone = el("a", { id: "clone-run", href: `#/clone/${run.id}`, title: "the launch form with this run's config" }, "Clone");
    root.append(shareBtn, shareOut, clone);
  }
  root.append(link("export-html", `/api/runs/${run.id}/export.html`, "HTML", "a self-contained page that opens offline"),
    link("export-bundle", `/api/runs/${run.id}/bundle.zip`, "Bundle", "config, metrics, filters, weights, checkpoint"),
    status, details);
  fillRecord(details, run, readOnly);
  return root;
}

function fillRecord(details, run, readOnly) {
  const table = el("table", { class: "record" }, ...recordRows(run).map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", {}, fmt(v)))));
  const tags = el("div", { id: "run-tags" }, ...(run.tags ?? []).map((t) => el("span", { class: "tag" }, t)));
  const notes = el("div", { id: "run-notes", class: "notes" });
  notes.innerHTML = run.notes_html ?? ""; // sanitised server-side (backend/app/markdown.py)
  details.append(tags, notes, table);
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

// `#/shared`: the share token is in sessionStorage; find its run and open its page
export async function sharedLanding() {
  const me = await api.me();
  if (me.kind !== "share" || !me.run_id) throw new Error("this share link is invalid, expired or revoked");
  location.replace(`#/runs/${me.run_id}`);
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
