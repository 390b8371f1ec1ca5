// `#/admin`: lab members and their tokens (create a named token, shown once; revoke) and who
// launched what. Admins only; the server refuses everyone else (GET /api/me says who we are).
import { api } from "./api.js";
import { el } from "./dom.js";
import { copyText, when } from "./share.js";
import { workersSection } from "./workers_page.js";

function memberRow(u, onRevoke) {
  const revoked = u.revoked_at != null;
  const revoke = el("button", { class: "danger", "data-revoke-user": u.id, ...(revoked ? { disabled: "" } : {}) }, "Revoke");
  revoke.addEventListener("click", () => onRevoke(u, revoke));
  return el("tr", { "data-user": u.id, class: revoked ? "revoked" : "" },
    el("td", {}, el("strong", {}, u.name)),
    el("td", {}, u.is_admin ? "admin" : "member"),
    el("td", { class: "muted" }, when(u.created_at)),
    el("td", { "data-user-state": "" }, revoked ? el("span", { class: "status failed" }, `revoked ${when(u.revoked_at)}`)
      : el("span", { class: "status succeeded" }, "active")),
    el("td", {}, u.runs_launched ? el("a", { href: `#/?launched_by=${encodeURIComponent(u.name)}` }, String(u.runs_launched)) : "0"),
    el("td", {}, revoke));
}

export async function adminPage(view) {
  const me = await api.me();
  if (!me.is_admin) {
    const who = me.kind === "anonymous" ? "not signed in" : `signed in as ${me.name ?? "a share link"}`;
    view.replaceChildren(el("div", { class: "error", id: "admin-refused" }, `The admin page is for lab admins; you are ${who}.`));
    return { close() {} };
  }
  const root = el("div", { id: "admin-page" });
  view.replaceChildren(root);

  // create a member: the token comes back once, with a login link that stores it in their browser
  const name = el("input", { id: "member-name", placeholder: "name, e.g. alice", maxlength: 100, required: "" });
  const isAdmin = el("input", { type: "checkbox", id: "member-admin" });
  const create = el("button", { class: "primary", id: "member-create", type: "submit" }, "Create member token");
  const formError = el("span", { class: "error", id: "member-error" });
  const form = el("form", { class: "admin-form", id: "member-form" },
    name, el("label", {}, isAdmin, " admin (may manage members)"), create, formError);
  const tokenOut = el("input", { id: "new-token", readonly: "", size: 56 });
  const loginOut = el("input", { id: "new-login", readonly: "", size: 56 });
  const copyMsg = el("span", { class: "muted", id: "copy-status" });
  const copyBtn = (id, input, what) => {
    const b = el("button", { id, type: "button" }, "Copy");
    b.addEventListener("click", async () => { copyMsg.textContent = await copyText(input.value, input, what); });
    return b;
  };
  const created = el("div", { class: "token-once", id: "token-once", hidden: "" },
    el("p", { id: "token-once-title" }),
    el("div", { class: "copy-row" }, el("label", { for: "new-token" }, "Token"), tokenOut, copyBtn("copy-token", tokenOut, "token")),
    el("div", { class: "copy-row" }, el("label", { for: "new-login" }, "Login link"), loginOut, copyBtn("copy-login", loginOut, "login link")),
    copyMsg);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    formError.textContent = "";
    create.disabled = true;
    try {
      const u = await api.createUser({ name: name.value.trim(), is_admin: isAdmin.checked });
      tokenOut.value = u.token;
      loginOut.value = `${location.origin}/#/login?token=${encodeURIComponent(u.token)}`;
      created.querySelector("#token-once-title").replaceChildren(
        "Token for ", el("strong", {}, u.name), " — shown this once (only its hash is stored). ",
        "Send them the login link, or the token for the API's Authorization: Bearer header.");
      copyMsg.textContent = "";
      created.hidden = false;
      name.value = "";
      isAdmin.checked = false;
      await refreshMembers();
    } catch (err) {
      formError.textContent = Array.isArray(err.detail) ? err.detail.map((d) => `${d.loc?.at(-1)}: ${d.msg}`).join("; ") : err.message;
    } finally { create.disabled = false; }
  });

  const members = el("table", { class: "runs", id: "members" });
  const membersMsg = el("div", { class: "error", id: "members-error" });
  async function onRevoke(u, button) {
    if (!confirm(`Revoke ${u.name}'s token? Their runs stay on record; the token stops working at once.`)) return;
    button.disabled = true;
    try { await api.revokeUser(u.id); await refreshMembers(); }
    catch (err) { membersMsg.textContent = err.message; button.disabled = false; }
  }
  async function refreshMembers() {
    const users = await api.users();
    const head = el("tr", {}, ...["Name", "Role", "Created", "Token", "Runs launched", ""].map((h) => el("th", {}, h)));
    members.replaceChildren(head, ...(users.length ? users.map((u) => memberRow(u, onRevoke))
      : [el("tr", {}, el("td", { colspan: 6, class: "muted" }, "No members yet: create a token above."))]));
  }

  // who launched what, newest first; filter by launcher
  const launches = el("table", { class: "runs", id: "launches" });
  const by = el("select", { id: "launches-by" }, el("option", { value: "" }, "everyone"));
  let all = [];
  function drawLaunches() {
    const rows = all.filter((r) => !by.value || (r.launched_by ?? "") === by.value);
    const head = el("tr", {}, ...["Run", "Launched by", "Status", "Created"].map((h) => el("th", {}, h)));
    launches.replaceChildren(head, ...(rows.length ? rows.map((r) => el("tr", { "data-launch": r.run_id },
      el("td", {}, el("a", { href: `#/runs/${r.run_id}` }, r.title)),
      el("td", {}, r.launched_by ?? "–"),
      el("td", {}, el("span", { class: `status ${r.status}` }, r.status)),
      el("td", { class: "muted" }, when(r.created_at))))
      : [el("tr", {}, el("td", { colspan: 4, class: "muted" }, "No runs launched yet."))]));
  }
  by.addEventListener("change", drawLaunches);
  async function refreshLaunches() {
    all = await api.launches();
    const names = [...new Set(all.map((r) => r.launched_by ?? ""))].sort();
    const keep = by.value;
    by.replaceChildren(el("option", { value: "" }, "everyone"), ...names.map((n) => el("option", { value: n }, n || "(unknown)")));
    by.value = names.includes(keep) ? keep : "";
    drawLaunches();
  }

  // the lab's workers, the queue in order, and the command that adds a GPU machine
  const join = el("input", { id: "join-command", readonly: "", size: 90 });
  const joinMsg = el("p", { class: "muted", id: "join-message" });
  try { join.value = (await api.joinCommand()).command; joinMsg.textContent = "Run this in a Pinwheel checkout on a GPU machine to add its GPUs:"; }
  catch (err) { join.hidden = true; joinMsg.textContent = err.message; }

  root.append(el("h2", {}, "Lab members"),
    el("p", { class: "muted" }, `Signed in as ${me.name}. A member token may launch, cancel and edit runs and create share links; an admin token may also manage members.`),
    form, created, membersMsg, members,
    el("h2", { class: "spaced" }, "Who launched what"), el("div", { class: "filters" }, el("label", {}, "launched by ", by)), launches,
    el("h2", { class: "spaced" }, "Workers"), ...(await workersSection()), joinMsg, join);
  await Promise.all([refreshMembers(), refreshLaunches()]);
  return { close() {} };
}
