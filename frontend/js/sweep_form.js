// "Sweep a field" under the launch form: one line per field (`model.lam=0.1,0.2,0.4`); every
// combination is queued as a run of one sweep (POST /api/sweeps) with the form's config as the
// base, then the sweep's page opens. Config errors land on the form's fields, sweep errors here.
import { el } from "./api.js";
import { bearer } from "./auth.js";

const LINE = /^\s*([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)\s*=\s*(.+?)\s*$/;

function parseValue(text) {
  try { return JSON.parse(text); } catch { return text; } // as the CLI's --grid: JSON when it parses
}

// "model.lam=0.1,0.2\ntrain.lr=0.01" → {grid} or {error} naming the line
export function parseGrid(text) {
  const grid = {};
  for (const [i, raw] of text.split("\n").entries()) {
    if (!raw.trim()) continue;
    const m = raw.match(LINE);
    if (!m) return { error: `line ${i + 1}: expected field=v1,v2,… e.g. model.lam=0.1,0.2` };
    const values = m[2].split(",").map((v) => v.trim());
    if (values.some((v) => v === "")) return { error: `line ${i + 1}: an empty value in ${m[1]}` };
    grid[m[1]] = values.map(parseValue);
  }
  if (!Object.keys(grid).length) return { error: "give at least one field to sweep" };
  return { grid };
}

export function sweepControls(form) {
  const text = el("textarea", { id: "sweep-grid", rows: 3, cols: 40, placeholder: "model.lam=0.1,0.2,0.4\ntrain.lr=0.003,0.01" });
  const go = el("button", { type: "button", id: "sweep-launch" }, "Launch sweep");
  const error = el("div", { class: "error", id: "sweep-error" });
  go.addEventListener("click", async () => {
    error.textContent = "";
    form.clearErrors();
    let ok = true;
    for (const f of form.fields.values()) ok = form.check(f) && ok;
    if (!ok) { form.formError.textContent = "fix the fields marked in red"; return; }
    const { grid, error: bad } = parseGrid(text.value);
    if (bad) { error.textContent = bad; return; }
    go.disabled = true;
    try {
      const res = await fetch("/api/sweeps", { method: "POST",
        headers: { Authorization: `Bearer ${bearer()}`, "Content-Type": "application/json" },
        body: JSON.stringify({ ...(form.presetId ? { preset: form.presetId } : {}), config: form.values, grid }) });
      const data = await res.json();
      if (res.ok) { location.hash = `#/sweeps/${data.id}`; return; }
      const detail = data.detail;
      if (res.status === 422 && Array.isArray(detail) && detail[0]?.loc?.[1] === "config") form.showServerErrors(detail);
      else error.textContent = Array.isArray(detail) ? detail.map((d) => `${d.field ?? d.loc?.join(".")}: ${d.msg}`).join("\n") : String(detail);
    } catch (err) {
      error.textContent = err.message;
    } finally {
      go.disabled = false;
    }
  });
  return el("details", { class: "sweep-controls", id: "sweep-controls" },
    el("summary", {}, "Sweep fields (a grid of runs)"), text, el("div", {}, go), error);
}
