// `#/workers`: the lab's workers (host, devices, queues, current run, runs done, last heartbeat) and
// each queue in order — a read-only summary for every member; the admin page adds the join command.
import { api } from "./api.js";
import { el } from "./dom.js";
import { when } from "./share.js";

export async function workersSection() {
  const table = el("table", { class: "runs", id: "workers" });
  const queue = el("p", { class: "muted", id: "queue" });
  const w = await api.workers();
  const head = el("tr", {}, ...["Worker", "Host", "Devices", "Queues", "Running", "Runs done", "Last heartbeat"].map((h) => el("th", {}, h)));
  table.replaceChildren(head, ...(w.workers.length ? w.workers.map((x) => el("tr", { "data-worker": x.name },
    el("td", {}, x.name), el("td", {}, x.host), el("td", {}, x.devices.join(", ")), el("td", {}, x.queues.join(", ")),
    el("td", {}, x.run ? el("a", { href: `#/runs/${x.run}` }, `${x.run.slice(0, 8)}… (attempt ${x.attempt})`) : "idle"),
    el("td", {}, String(x.runs_done)), el("td", { class: "muted" }, when(new Date(x.seen * 1000).toISOString()))))
    : [el("tr", {}, el("td", { colspan: 7, class: "muted" }, "No worker is up."))]));
  const line = (name, ids) => `${name}: ${ids.length ? ids.map((id, i) => `${i + 1}. ${id.slice(0, 8)}…`).join("  ") : "empty"}`;
  queue.textContent = `Queue — ${line("GPU", w.queues.gpu)} · ${line("any worker", w.queues.celery)}`;
  return [table, queue];
}

export async function workersPage(view) {
  view.replaceChildren(el("h2", {}, "Workers"), ...(await workersSection()));
  return { close() {} };
}
