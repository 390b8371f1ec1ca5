// `?` shows the keyboard shortcuts (the run page's keys), Esc or a click outside closes them.
import { el } from "./dom.js";

const KEYS = [
  [["←", "→"], "step back / forward one frame"],
  [["Shift+←", "Shift+→"], "ten frames back / forward"],
  [["Home", "End"], "first / last frame"],
  [["Space"], "play / pause"],
  [["L"], "live: follow the newest frame"],
  [["?"], "show this list"],
  [["Esc"], "close this list, or an enlarged panel (⤢ Enlarge on each panel)"],
];

let overlay = null;

function build() {
  const close = el("button", { id: "shortcuts-close", type: "button", title: "close (Esc)" }, "×");
  close.addEventListener("click", hide);
  const rows = KEYS.map(([keys, what]) => el("tr", {},
    el("td", {}, ...keys.flatMap((k, i) => (i ? [" ", el("kbd", {}, k)] : [el("kbd", {}, k)]))), el("td", {}, what)));
  const sheet = el("div", { class: "sheet", role: "dialog", "aria-label": "Keyboard shortcuts" },
    el("h2", {}, "Keyboard shortcuts", close),
    el("p", { class: "muted" }, "On a run's page (the timeline):"), el("table", {}, ...rows));
  const root = el("div", { class: "shortcuts", id: "shortcuts", hidden: "" }, sheet);
  root.addEventListener("click", (ev) => { if (ev.target === root) hide(); });
  document.body.append(root);
  return root;
}

export function show() { overlay ??= build(); overlay.hidden = false; }
export function hide() { if (overlay) overlay.hidden = true; }

export function installShortcuts() {
  document.getElementById("show-shortcuts")?.addEventListener("click", show);
  // capture phase: Esc closes the list before any page handler sees it
  document.addEventListener("keydown", (ev) => {
    const open = overlay && !overlay.hidden;
    if (open && ev.key === "Escape") { hide(); ev.stopImmediatePropagation(); ev.preventDefault(); return; }
    const t = ev.target;
    const typing = t && (t.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(t.tagName));
    if (ev.key === "?" && !typing && !ev.ctrlKey && !ev.metaKey && !ev.altKey) {
      ev.preventDefault();
      if (open) hide(); else show();
    }
  }, true);
}
