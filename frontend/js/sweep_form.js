// "Sweep fields" under the launch form: one line per field, either a grid (`model.lam=0.1,0.2,0.4`:
// every combination runs) or a random range (`train.lr~0.001:0.1:log`, drawn `samples` times, `:int`
// rounds); all queued as runs of one sweep (POST /api/sweeps) with the form's config as the base,
// then the sweep's page opens. Config errors land on the form's fields, sweep errors here.
import { el } from "./dom.js";
import { bearer } from "./auth.js";

const LINE = /^\s*([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)\s*=\s*(.+?)\s*$/;
const RANGE = /^\s*([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)\s*~\s*([^:\s]+):([^:\s]+)((?::(?:log|int))*)\s*$/;

function parseValue(text) {
  try { return JSON.parse(text); } catch { return text; } // as the CLI's --grid: JSON when it parses
}

// "model.lam=0.1,0.2\ntrain.lr~0.001:0.1:log" → {grid, random} or {error} naming the line
export function parseGrid(text) {
  const grid = {}, random = {};
  for (const [i, raw] of text.split("\n").entries()) {
    if (!raw.trim()) continue;
    const r = raw.match(RANGE);
    if (r) {
      const [low, high] = [Number(r[2]), Number(r[3])];
      if (!Number.isFinite(low) || !Number.isFinite(high)) return { error: `line ${i + 1}: ${r[1]}: low and high must be numbers` };
      random[r[1]] = { low, high, log: r[4].includes(":log"), integer: r[4].includes(":int") };
      continue;
    }
    const m = raw.match(LINE);
    if (!m) return { error: `line ${i + 1}: expected field=v1,v2,… (a grid) or field~low:high[:log][:int] (random)` };
    const values = m[2].split(",").map((v) => v.trim());
    if (values.some((v) => v === "")) return { error: `line ${i + 1}: an empty value in ${m[1]}` };
    grid[m[1]] = values.map(parseValue);
  }
  if (!Object.keys(grid).length && !Object.keys(random).length) return { error: "give at least one field to sweep" };
  return { grid, random };
}

export function sweepControls(form) {
  const text = el("textarea", { id: "sweep-grid", rows: 3, cols: 40, placeholder: "model.lam=0.1,0.2,0.4\ntrain.lr~0.001:0.03:log" });
  const samples = el("input", { id: "sweep-samples", type: "number", min: 1, max: 64, value: 4, title: "random draws of the ~ fields" });
  const go = el("button", { type: "button", id: "sweep-launch" }, "Launch sweep");
  const error = el("div", { class: "error", id: "sweep-error" });
  go.addEventListener("click", async () => {
    error.textContent = "";
    form.clearErrors();
    let ok = true;
    for (const f of form.fields.values()) ok = form.check(f) && ok;
    if (!ok) { form.formError.textContent = "fix the fields marked in red"; return; }
    const { grid, random, error: bad } = parseGrid(text.value);
    if (bad) { error.textContent = bad; return; }
    go.disabled = true;
    try {
      const res = await fetch("/api/sweeps", { method: "POST",
        headers: { Authorization: `Bearer ${bearer()}`, "Content-Type": "application/json" },
        body: JSON.stringify({ ...(form.presetId ? { preset: form.presetId } : {}), config: form.values, grid, random,
          samples: Object.keys(random).length ? +samples.value : 0 }) });
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
    el("summary", {}, "Sweep fields (a grid, or random draws, of runs)"), text,
    el("div", {}, el("label", {}, "random draws ", samples), " ", go), error);
}
