// The launch form, generated from the run config's JSON schema (GET /api/schema): one fieldset per
// section (model, data, train), a kind selector wherever the schema has a discriminated union,
// browser-side validation from the schema's bounds, and the server's 422 errors shown by the field.
import { el } from "./dom.js";
import { sweepControls } from "./sweep_form.js";

const SECTIONS = ["model", "data", "train"];

function resolve(schema, node) {
  while (node && node.$ref) node = schema.$defs[node.$ref.split("/").pop()];
  return node;
}

function nullable(node) { // pydantic's `X | None` is anyOf [X, {type: null}]
  if (!node.anyOf) return null;
  const rest = node.anyOf.filter((n) => n.type !== "null");
  return rest.length === 1 && rest.length < node.anyOf.length ? rest[0] : null;
}

function variants(schema, node) { // discriminated union → {kindValue: objectSchema}
  const list = node.oneOf || node.anyOf;
  if (!list) return null;
  const out = {};
  for (const v of list) {
    const obj = resolve(schema, v);
    const kind = obj?.properties?.kind;
    if (!kind) return null;
    for (const value of kind.enum ?? [kind.const]) out[value] = obj;
  }
  return Object.keys(out).length ? out : null;
}

function label(name, node) { return (node.title || name).replace(/_/g, " "); }

export class LaunchForm {
  constructor(schema, { onSubmit }) {
    this.schema = schema;
    this.onSubmit = onSubmit;
    this.fields = new Map(); // path → {input, node, errorEl}
    this.values = {};
    this.root = el("form", { class: "launch-form", id: "launch-form", novalidate: "" });
    this.body = el("div", { class: "sections" });
    this.submitBtn = el("button", { class: "primary", type: "submit", id: "launch-submit" }, "Launch");
    this.formError = el("div", { class: "error", id: "launch-error" });
    this.root.append(this.body, el("div", { class: "form-actions" }, this.submitBtn, this.formError), sweepControls(this));
    this.root.addEventListener("submit", (ev) => { ev.preventDefault(); this.submit(); });
  }

  // fill the form with a (resolved) config, e.g. a preset's
  load(config, presetId = null) {
    this.presetId = presetId;
    this.values = structuredClone(config);
    this.render();
  }

  render() {
    this.fields.clear();
    const sections = SECTIONS.map((name) => {
      const node = resolve(this.schema, this.schema.properties[name]);
      const fs = el("fieldset", { "data-section": name }, el("legend", {}, name));
      this.object(fs, node, [name], this.values[name] ?? {});
      return fs;
    });
    this.body.replaceChildren(...sections);
  }

  object(container, node, path, value) {
    const vs = variants(this.schema, node);
    if (vs) { // a kind selector swaps the fields below it
      const kinds = Object.keys(vs);
      const kind = kinds.includes(value.kind) ? value.kind : kinds[0];
      const select = el("select", { "data-path": [...path, "kind"].join(".") }, ...kinds.map((k) =>
        el("option", { value: k, ...(k === kind ? { selected: "" } : {}) }, k)));
      const sub = el("div", { class: "subfields" });
      select.addEventListener("change", () => {
        this.setAt(path, { kind: select.value });
        const fresh = el("div", { class: "subfields" });
        sub.replaceWith(fresh);
        this.clearUnder(path);
        this.objectFields(fresh, vs[select.value], path, { kind: select.value });
      });
      const row = el("label", { class: "field" }, el("span", {}, "kind"), select,
        el("span", { class: "field-error", "data-for": [...path, "kind"].join(".") }));
      container.append(row, sub);
      this.fields.set([...path, "kind"].join("."), { input: select, node: { type: "string" }, errorEl: row.lastChild, path: [...path, "kind"] });
      this.setAt([...path, "kind"], kind);
      this.objectFields(sub, vs[kind], path, value);
      return;
    }
    this.objectFields(container, node, path, value);
  }

  clearUnder(path) {
    const prefix = path.join(".") + ".";
    for (const key of [...this.fields.keys()]) if (key.startsWith(prefix) && !key.endsWith(".kind")) this.fields.delete(key);
  }

  objectFields(container, node, path, value) {
    if (node.description) container.append(el("p", { class: "muted desc" }, node.description));
    for (const [name, raw] of Object.entries(node.properties || {})) {
      if (name === "kind") continue;
      const p = [...path, name];
      let child = resolve(this.schema, raw);
      const inner = nullable(child);
      if (variants(this.schema, child)) {
        const fs = el("fieldset", { class: "nested", "data-section": p.join(".") }, el("legend", {}, label(name, child)));
        container.append(fs);
        this.object(fs, child, p, value[name] ?? {});
        continue;
      }
      if (inner) child = { ...resolve(this.schema, inner), description: child.description ?? inner.description, nullable: true, default: child.default };
      this.field(container, child, p, value[name] ?? child.default ?? null, name);
    }
  }

  field(container, node, path, value, name) {
    const key = path.join(".");
    let input;
    if (node.enum || node.const !== undefined) {
      const opts = node.enum ?? [node.const];
      input = el("select", {}, ...opts.map((o) => el("option", { value: o, ...(o === value ? { selected: "" } : {}) }, o)));
    } else if (node.type === "boolean") {
      input = el("input", { type: "checkbox", ...(value ? { checked: "" } : {}) });
    } else if (node.type === "integer" || node.type === "number") {
      input = el("input", { type: "text", inputmode: "decimal", value: value ?? "" });
    } else if (node.type === "string") {
      input = el("input", { type: "text", value: value ?? "", placeholder: node.nullable ? "(none)" : "" });
    } else { // arrays / free-form objects: edited as JSON
      input = el("textarea", { rows: 3 }, JSON.stringify(value ?? node.default ?? null));
      node = { ...node, json: true };
    }
    input.dataset.path = key;
    const errorEl = el("span", { class: "field-error", "data-for": key });
    const hint = node.description ? el("span", { class: "hint" }, node.description) : "";
    container.append(el("label", { class: "field" }, el("span", { class: "name" }, label(name, node)), input, errorEl, hint));
    const entry = { input, node, errorEl, path };
    this.fields.set(key, entry);
    input.addEventListener("change", () => this.check(entry));
    this.setAt(path, value);
  }

  setAt(path, v) {
    let o = this.values;
    for (const k of path.slice(0, -1)) o = o[k] = o[k] && typeof o[k] === "object" ? o[k] : {};
    o[path.at(-1)] = v;
  }

  // parse and validate one field against its schema; returns [ok, value]
  check(entry) {
    const { input, node, errorEl } = entry;
    let v, msg = "";
    if (input.type === "checkbox") v = input.checked;
    else if (node.json) {
      try { v = JSON.parse(input.value); } catch { msg = "not valid JSON"; }
    } else if (node.type === "integer" || node.type === "number") {
      const t = input.value.trim();
      if (t === "" && node.nullable) v = null;
      else {
        v = Number(t);
        if (t === "" || !Number.isFinite(v)) msg = "a number is needed";
        else if (node.type === "integer" && !Number.isInteger(v)) msg = "a whole number is needed";
        else if (node.minimum != null && v < node.minimum) msg = `must be ≥ ${node.minimum}`;
        else if (node.exclusiveMinimum != null && v <= node.exclusiveMinimum) msg = `must be > ${node.exclusiveMinimum}`;
        else if (node.maximum != null && v > node.maximum) msg = `must be ≤ ${node.maximum}`;
        else if (node.exclusiveMaximum != null && v >= node.exclusiveMaximum) msg = `must be < ${node.exclusiveMaximum}`;
      }
    } else {
      v = input.value;
      if (v === "" && node.nullable) v = null;
    }
    errorEl.textContent = msg;
    input.classList.toggle("invalid", !!msg);
    if (!msg) this.setAt(entry.path, v);
    return !msg;
  }

  clearErrors() {
    for (const f of this.fields.values()) { f.errorEl.textContent = ""; f.input.classList.remove("invalid"); }
    this.formError.textContent = "";
  }

  // server 422: detail[].loc like ["body","config","model","group_sparse","lam"]; a model-level
  // error's msg may name the field ("units: …", "groups.pool: …")
  showServerErrors(detail) {
    const unplaced = [];
    for (const d of Array.isArray(detail) ? detail : [{ loc: [], msg: String(detail) }]) {
      const loc = (d.loc || []).filter((x) => x !== "body" && x !== "config");
      const path = [];
      for (const part of loc) { // drop union tags: a tag is a kind value, not a field
        if (this.fields.has([...path, "kind"].join(".")) && this.fields.get([...path, "kind"].join(".")).input.value === part) continue;
        path.push(part);
      }
      let key = path.join(".");
      const msg = String(d.msg).replace(/^Value error, /, "");
      const named = msg.match(/^([a-z_][\w.]*):\s/);
      if (!this.fields.has(key) && named) key = [...path, named[1]].join(".");
      while (!this.fields.has(key) && key.includes(".")) key = key.slice(0, key.lastIndexOf("."));
      const f = this.fields.get(key);
      if (f) { f.errorEl.textContent = msg; f.input.classList.add("invalid"); }
      else unplaced.push(`${loc.join(".")}: ${msg}`);
    }
    this.formError.textContent = unplaced.join("\n");
    const first = this.root.querySelector(".invalid");
    first?.focus();
  }

  async submit() {
    this.clearErrors();
    let ok = true;
    for (const f of this.fields.values()) ok = this.check(f) && ok;
    if (!ok) { this.formError.textContent = "fix the fields marked in red"; return; }
    this.submitBtn.disabled = true;
    try {
      await this.onSubmit({ ...(this.presetId ? { preset: this.presetId } : {}), config: this.values });
    } catch (err) {
      if (err.status === 422) this.showServerErrors(err.detail);
      else this.formError.textContent = err.message;
    } finally {
      this.submitBtn.disabled = false;
    }
  }
}
