// `#/import`: upload a bundle .zip (a run's "Bundle" download, from this or another Pinwheel
// server); the server recreates the run and we open its page. A refused file shows the server's
// reason next to the form.
import { api } from "./api.js";
import { el } from "./dom.js";

function reason(err) {
  if (Array.isArray(err.detail)) return err.detail.map((d) => d.msg ?? JSON.stringify(d)).join("; ");
  if (err.status === 401 || err.status === 403) return `${err.message} (importing needs a member token)`;
  return err.message;
}

function size(bytes) {
  return bytes < 1024 * 1024 ? `${(bytes / 1024).toFixed(1)} KB` : `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

export async function importPage(view) {
  const file = el("input", { type: "file", id: "bundle-file", accept: ".zip,application/zip" });
  const submit = el("button", { class: "primary", id: "bundle-import", type: "submit" }, "Import");
  const status = el("span", { class: "muted", id: "import-status" });
  const error = el("div", { class: "error import-error", id: "import-error", role: "alert", hidden: "" });
  const form = el("form", { class: "panel import-form", id: "import-form" },
    el("label", { for: "bundle-file" }, "Bundle (.zip) "), file, submit, status);
  file.addEventListener("change", () => {
    error.hidden = true;
    const f = file.files[0];
    status.textContent = f ? `${f.name}, ${size(f.size)}` : "";
  });
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    error.hidden = true;
    const f = file.files[0];
    if (!f) { error.textContent = "Choose a bundle .zip first."; error.hidden = false; return; }
    submit.disabled = true;
    status.textContent = `uploading ${f.name} (${size(f.size)})…`;
    try {
      const run = await api.importBundle(f);
      location.hash = `#/runs/${run.id}`;
    } catch (err) {
      status.textContent = "";
      error.replaceChildren(el("strong", {}, `Could not import ${f.name}`), ` (HTTP ${err.status ?? "?"}): `, reason(err));
      error.hidden = false;
    } finally { submit.disabled = false; }
  });
  view.replaceChildren(el("div", { id: "import-page" },
    el("h2", {}, "Import a run bundle"),
    el("p", { class: "muted" }, "A bundle is the .zip from a run page's “Bundle” link: config, environment record, metrics, ",
      "final filters and weights. Importing recreates the run's page here, with you recorded as its importer."),
    form, error));
  return { close() {} };
}
