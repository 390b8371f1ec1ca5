// Thin fetch wrappers; errors carry the server's detail so the page can show it by the field.
export class ApiError extends Error {
  constructor(status, detail) {
    super(typeof detail === "string" ? detail : JSON.stringify(detail));
    this.status = status;
    this.detail = detail;
  }
}

async function call(method, path, body, as = null) {
  const opts = { method, headers: {} };
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const res = await fetch(path, opts);
  if (as === "blob" && res.ok) return res.blob();
  const data = res.headers.get("content-type")?.includes("json") ? await res.json() : await res.text();
  if (!res.ok) throw new ApiError(res.status, data?.detail ?? data);
  return data;
}

export const api = {
  presets: () => call("GET", "/api/presets"),
  runs: () => call("GET", "/api/runs"),
  run: (id) => call("GET", `/api/runs/${id}`),
  launch: (body) => call("POST", "/api/runs", body),
  cancel: (id) => call("POST", `/api/runs/${id}/cancel`),
  frames: (id, params) => call("GET", `/api/runs/${id}/frames?${new URLSearchParams(params)}`),
  schema: () => call("GET", "/api/schema"),
  exportGif: (id, params) => call("GET", `/api/runs/${id}/exports/filter_grid.gif?${new URLSearchParams(params)}`, undefined, "blob"),
};

export function formatDuration(seconds) {
  if (seconds == null || !isFinite(seconds)) return "–";
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
}

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null) node.setAttribute(k, v);
  }
  for (const c of children.flat()) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}
