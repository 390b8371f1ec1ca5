"""Where the CLI finds its server and token: flags, then PINWHEEL_URL / PINWHEEL_TOKEN, then the file
`pinwheel login` writes (~/.config/pinwheel/config.json, mode 0600 — it holds a bearer token)."""
from __future__ import annotations

import json
import os
from pathlib import Path


def config_path() -> Path:
    if os.environ.get("PINWHEEL_CONFIG"):
        return Path(os.environ["PINWHEEL_CONFIG"]).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base).expanduser() / "pinwheel" / "config.json"


def read_config() -> dict:
    path = config_path()
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ValueError(f"config: cannot read {path} ({exc}); run `pinwheel login URL` again") from None
    return data if isinstance(data, dict) else {}


def write_config(url: str, token: str) -> Path:
    """Created 0600 from the start (never world-readable, not even for an instant)."""
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"url": url, "token": token}, f)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return path


def resolve(url: str | None, token: str | None) -> tuple[str | None, str | None]:
    """Flags (Typer already folds the env variables into them) win; the file fills in the rest."""
    if url and token:
        return url, token
    saved = read_config()
    if url and saved.get("url") and saved["url"].rstrip("/") != url.rstrip("/"):
        return url, token  # a different server: the saved token is not for it
    return url or saved.get("url"), token or saved.get("token")
