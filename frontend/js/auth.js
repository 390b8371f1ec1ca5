// Tokens in the browser. The admin/member token lives in localStorage (the printed login URL puts
// it there, then leaves the address bar); a share link's token lives in sessionStorage for the tab.
// Both go to the server in the Authorization header only; EventSource and downloads use a
// short-lived read ticket instead (see api.authUrl).
const TOKEN = "pinwheel.token";
const SHARE = "pinwheel.share";

export function bearer() {
  return localStorage.getItem(TOKEN) || sessionStorage.getItem(SHARE) || null;
}
export function isShareView() { return !localStorage.getItem(TOKEN) && !!sessionStorage.getItem(SHARE); }
export function setToken(token) { localStorage.setItem(TOKEN, token); }
export function setShare(token) { sessionStorage.setItem(SHARE, token); }
export function logout() { localStorage.removeItem(TOKEN); sessionStorage.removeItem(SHARE); }

// `#/login?token=…` (printed by `make run`) and `#/share/<token>`: store, then strip from the URL.
export function consumeHashToken() {
  const login = location.hash.match(/^#\/login\?(.*)$/);
  if (login) {
    const token = new URLSearchParams(login[1]).get("token");
    if (token) setToken(token);
    history.replaceState(null, "", location.pathname + "#/");
    return "login";
  }
  const share = location.hash.match(/^#\/share\/([A-Za-z0-9_-]{10,200})$/);
  if (share) {
    setShare(share[1]);
    history.replaceState(null, "", location.pathname + "#/shared");
    return "share";
  }
  return null;
}
