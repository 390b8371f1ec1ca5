"""Pinwheel's HTTP API as Python functions (httpx; no torch).

    from pinwheel.client import Client
    pw = Client("http://127.0.0.1:8000", token="pwu_…")
    run = pw.launch("topographic-natural", overrides={"model": {"lam": 0.2}})
    print(pw.run_url(run.id))
    run = pw.wait(run.id)                      # polls until succeeded / failed / cancelled
    pw.download(run.id, "weights", "w.npz")    # or "bundle", "html"

Every failure raises PinwheelError with the API's field and reason (`str(err)` is one line:
"config.model.lam: Input should be a valid number"), an unreachable server included.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx

from ._client_models import Me, Preset, RunInfo, SweepInfo
from .protocol import TERMINAL_STATUSES

DOWNLOADS = {  # what → (route under /api/runs/{id}/, default file name)
    "weights": ("weights.npz", "{id}-weights.npz"),
    "bundle": ("bundle.zip", "pinwheel-{id}.zip"),
    "html": ("export.html", "pinwheel-{id}.html"),
}


class PinwheelError(Exception):
    """An API or connection failure: `field` (what was wrong), `reason`, and the HTTP `status` (0: no reply)."""

    def __init__(self, field: str, reason: str, status: int = 0):
        super().__init__(f"{field}: {reason}")
        self.field, self.reason, self.status = field, reason, status


def _field_of(loc: list) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    return ".".join(parts) or "request"


def error_from_response(response: httpx.Response) -> PinwheelError:
    """The API's `detail` (a "field: reason" string, or FastAPI's list of {loc, msg}) as one error."""
    try:
        detail = response.json().get("detail")
    except ValueError:
        detail = None
    if isinstance(detail, list) and detail and isinstance(detail[0], dict):
        first = detail[0]
        msg = str(first.get("msg", "invalid"))
        if msg == "Extra inputs are not permitted":
            msg = "unknown field"
        more = f" (and {len(detail) - 1} more)" if len(detail) > 1 else ""
        field = first.get("field") or _field_of(first.get("loc", []))  # `field`: the path as the user wrote it
        return PinwheelError(str(field), msg + more, response.status_code)
    if isinstance(detail, str) and ": " in detail:
        field, _, reason = detail.partition(": ")
        return PinwheelError(field, reason, response.status_code)
    text = detail if isinstance(detail, str) else (response.text[:200] or response.reason_phrase)
    return PinwheelError("server", f"HTTP {response.status_code}: {text}", response.status_code)


class Client:
    def __init__(self, url: str, token: str | None = None, *, timeout: float = 30.0,
                 transport: httpx.BaseTransport | None = None):
        if not url or not url.startswith(("http://", "https://")):
            raise PinwheelError("url", f"expected http://… or https://…, got {url!r}")
        self.url = url.rstrip("/")
        self.token = token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout, transport=transport)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- plumbing ---------------------------------------------------------------------------------
    def request(self, method: str, path: str, **kwargs) -> httpx.Response:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.TimeoutException:
            raise PinwheelError("server", f"{self.url} did not answer in time") from None
        except httpx.HTTPError as exc:
            raise PinwheelError("server", f"cannot reach {self.url} ({type(exc).__name__}: {exc})") from None
        if response.status_code >= 400:
            raise error_from_response(response)
        return response

    def run_url(self, run_id: str) -> str:
        return f"{self.url}/#/runs/{run_id}"

    # --- reading ----------------------------------------------------------------------------------
    def me(self) -> Me:
        return Me.model_validate(self.request("GET", "/api/me").json())

    def presets(self) -> list[Preset]:
        return [Preset.model_validate(p) for p in self.request("GET", "/api/presets").json()]

    def runs(self, q: str | None = None, tag: list[str] | None = None, status: str | None = None,
             launched_by: str | None = None, limit: int = 200) -> list[RunInfo]:
        params: dict[str, Any] = {"limit": limit}
        for key, value in (("q", q), ("status", status), ("launched_by", launched_by), ("tag", tag)):
            if value:
                params[key] = value
        return [RunInfo.model_validate(r) for r in self.request("GET", "/api/runs", params=params).json()]

    list = runs  # `pw.list()` reads like the CLI's `pinwheel list`

    def run(self, run_id: str) -> RunInfo:
        return RunInfo.model_validate(self.request("GET", f"/api/runs/{run_id}").json())

    show = run

    # --- writing ----------------------------------------------------------------------------------
    def launch(self, preset: str | None = None, overrides: dict | None = None, *, config: dict | None = None,
               title: str | None = None) -> RunInfo:
        """A preset, a full config, or both (the config's fields override the preset's)."""
        body: dict[str, Any] = {}
        if preset:
            body["preset"] = preset
        merged = {**(config or {}), **(overrides or {})} if config and overrides else (overrides or config)
        if merged:
            body["config"] = merged
        if title:
            body["title"] = title
        return RunInfo.model_validate(self.request("POST", "/api/runs", json=body).json())

    def cancel(self, run_id: str) -> RunInfo:
        return RunInfo.model_validate(self.request("POST", f"/api/runs/{run_id}/cancel").json())

    def tag(self, run_id: str, tags: list[str]) -> RunInfo:
        return RunInfo.model_validate(self.request("PATCH", f"/api/runs/{run_id}", json={"tags": tags}).json())

    def import_bundle(self, path: str | os.PathLike) -> RunInfo:
        path = Path(path)
        if not path.is_file():
            raise PinwheelError("bundle", f"{path} is not a file")
        data = path.read_bytes()
        response = self.request("POST", "/api/bundles", content=data,
                                headers={"Content-Type": "application/zip"})
        return RunInfo.model_validate(response.json())

    def download(self, run_id: str, what: str, path: str | os.PathLike | None = None) -> Path:
        """weights | bundle | html → a file (a folder for `path` keeps the default name). Written to a
        temporary name first, so a failed download never leaves half a file under the real name."""
        if what not in DOWNLOADS:
            raise PinwheelError("what", f"expected one of {', '.join(DOWNLOADS)}, got {what!r}")
        route, default = DOWNLOADS[what]
        target = Path(path) if path else Path.cwd()
        if target.is_dir():
            target = target / default.format(id=run_id)
        if not target.parent.is_dir():
            raise PinwheelError("output", f"folder {target.parent} does not exist")
        partial = target.with_name(target.name + ".part")
        try:
            with self.http.stream("GET", f"/api/runs/{run_id}/{route}") as response:
                if response.status_code >= 400:
                    response.read()
                    raise error_from_response(response)
                with open(partial, "wb") as f:
                    for chunk in response.iter_bytes():
                        f.write(chunk)
        except httpx.HTTPError as exc:
            partial.unlink(missing_ok=True)
            raise PinwheelError("server", f"cannot reach {self.url} ({type(exc).__name__}: {exc})") from None
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        os.replace(partial, target)
        return target

    # --- sweeps -----------------------------------------------------------------------------------
    def sweep(self, preset: str | None, grid: dict[str, list] | None = None, random: dict | None = None,
              samples: int = 0, overrides: dict | None = None, *, seed: int = 0, title: str | None = None) -> SweepInfo:
        """Queue every combination of `grid` (field → values) times `samples` draws of `random`
        (field → {low, high, log, integer} or a list of choices) as runs of one sweep."""
        body = {"preset": preset, "config": overrides or None, "grid": grid or {}, "random": random or {},
                "samples": samples, "seed": seed, "title": title}
        return SweepInfo.model_validate(self.request("POST", "/api/sweeps", json=body).json())

    def sweep_info(self, sweep_id: str) -> SweepInfo:
        return SweepInfo.model_validate(self.request("GET", f"/api/sweeps/{sweep_id}").json())

    def cancel_sweep(self, sweep_id: str) -> SweepInfo:
        return SweepInfo.model_validate(self.request("POST", f"/api/sweeps/{sweep_id}/cancel").json())

    def sweep_url(self, sweep_id: str) -> str:
        return f"{self.url}/#/sweeps/{sweep_id}"

    # --- following a run --------------------------------------------------------------------------
    def watch(self, run_id: str, poll: float = 1.0, timeout: float | None = None) -> Iterator[RunInfo]:
        """The run's record every `poll` seconds while it changes, ending with its terminal state."""
        deadline = None if timeout is None else time.monotonic() + timeout
        last = None
        while True:
            run = self.run(run_id)
            seen = (run.status, run.step, run.frame_count)
            if seen != last:
                yield run
                last = seen
            if run.status in TERMINAL_STATUSES:
                return
            if deadline is not None and time.monotonic() > deadline:
                raise PinwheelError("timeout", f"run {run_id} still {run.status} after {timeout} s")
            time.sleep(poll)

    def wait(self, run_id: str, poll: float = 1.0, timeout: float | None = None,
             on_update: Callable[[RunInfo], None] | None = None) -> RunInfo:
        run = None
        for run in self.watch(run_id, poll=poll, timeout=timeout):
            if on_update:
                on_update(run)
        return run
