// Thin fetch wrappers; errors carry the server's detail so the page can show it by the field.
import { bearer } from "./auth.js";

export class ApiError extends Error {
  constructor(status, detail) {
    super(typeof detail === "string" ? detail : JSON.stringify(detail));
    this.status = status;
    this.detail = detail;
  }
}

async function call(method, path, body, as = null) {
  const opts = { method, headers: {} };
  const token = bearer();
  if (token) opts.headers.Authorization = `Bearer ${token}`;
  if (body instanceof Blob) { // a file upload (bundle import): sent as is
    opts.headers["Content-Type"] = "application/zip";
    opts.body = body;
  } else if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const res = await fetch(path, opts);
  if (as === "blob" && res.ok) return { blob: await res.blob(), frames: res.headers.get("X-Frame-Count") };
  const data = res.headers.get("content-type")?.includes("json") ? await res.json() : await res.text();
  if (!res.ok) throw new ApiError(res.status, data?.detail ?? data);
  return data;
}

const tickets = {}; // run id → read ticket, for URLs that cannot carry a header

export const api = {
  presets: () => call("GET", "/api/presets"),
  runs: (params = {}) => call("GET", `/api/runs?${new URLSearchParams(params)}`),
  run: async (id) => {
    const [run, t] = await Promise.all([call("GET", `/api/runs/${id}`), call("GET", `/api/runs/${id}/ticket`)]);
    tickets[id] = t.ticket;
    return run;
  },
  // EventSource and <a download> cannot send the token: they carry the run's signed read ticket
  authUrl: (path) => {
    const m = path.match(/^\/api\/runs\/([0-9a-f]{32})\//);
    const t = m && tickets[m[1]];
    return t ? `${path}${path.includes("?") ? "&" : "?"}ticket=${encodeURIComponent(t)}` : path;
  },
  me: () => call("GET", "/api/me"),
  edit: (id, body) => call("PATCH", `/api/runs/${id}`, body),
  remove: (id) => call("DELETE", `/api/runs/${id}`),
  share: (id, body = {}) => call("POST", `/api/runs/${id}/shares`, body),
  shares: (id) => call("GET", `/api/runs/${id}/shares`),
  revokeShare: (id, shareId) => call("DELETE", `/api/runs/${id}/shares/${shareId}`),
  users: () => call("GET", "/api/users"),
  createUser: (body) => call("POST", "/api/users", body),
  revokeUser: (userId) => call("DELETE", `/api/users/${userId}`),
  launches: () => call("GET", "/api/launches"),
  workers: () => call("GET", "/api/workers"),
  joinCommand: () => call("GET", "/api/workers/join"),
  importBundle: (file) => call("POST", "/api/bundles", file),
  launch: (body) => call("POST", "/api/runs", body),
  cancel: (id) => call("POST", `/api/runs/${id}/cancel`),
  frames: (id, params) => call("GET", `/api/runs/${id}/frames?${new URLSearchParams(params)}`),
  schema: () => call("GET", "/api/schema"),
  // a file the server makes (the filter grid's GIF/MP4): {blob, frames (its X-Frame-Count)}
  fetchBlob: (path) => call("GET", path, undefined, "blob"),
};
