"""`pinwheel …`: launch, follow, list, cancel, download and import runs from a terminal.

Exit codes: 0 done (a watched run succeeded); 1 an error (bad input, unreachable server, refused
token — one line on stderr naming the field and the reason); 2 a usage error (Click's);
3 a watched run failed; 4 a watched run was cancelled; 130 interrupted (the run goes on).
Shell completion: `pinwheel --install-completion`.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Optional

import typer

from . import _client_config as cfg
from ._client_models import RunInfo
from ._client_overrides import OverrideError, parse_axis, parse_random, parse_sets
from .client import DOWNLOADS, Client, PinwheelError
from .protocol import ACTIVE_STATUSES

EXIT_ERROR, EXIT_FAILED, EXIT_CANCELLED, EXIT_INTERRUPTED = 1, 3, 4, 130
RUN_EXIT = {"succeeded": 0, "failed": EXIT_FAILED, "cancelled": EXIT_CANCELLED}

app = typer.Typer(help="Pinwheel from the terminal: launch and follow runs, download and import them.",
                  no_args_is_help=True, pretty_exceptions_enable=False)


class Failure(Exception):
    """One line for stderr, then exit 1."""


@app.callback()
def options(ctx: typer.Context,
            url: Optional[str] = typer.Option(None, "--url", envvar="PINWHEEL_URL", help="server, e.g. http://127.0.0.1:8000"),
            token: Optional[str] = typer.Option(None, "--token", envvar="PINWHEEL_TOKEN", help="bearer token")) -> None:
    ctx.obj = {"url": url, "token": token}


def client(ctx: typer.Context) -> Client:
    try:
        url, token = cfg.resolve(ctx.obj["url"], ctx.obj["token"])
    except ValueError as exc:
        raise Failure(str(exc)) from None
    if not url:
        raise Failure("url: no server given; use --url, PINWHEEL_URL or `pinwheel login URL`")
    return Client(url, token)


def complete_presets(incomplete: str) -> list[str]:
    """Shell completion of preset ids, asked of the configured server (nothing when it is unreachable)."""
    import os

    try:
        url, token = cfg.resolve(os.environ.get("PINWHEEL_URL"), os.environ.get("PINWHEEL_TOKEN"))
        with Client(url, token, timeout=2) as pw:
            return [p.id for p in pw.presets() if p.id.startswith(incomplete)]
    except Exception:
        return []


def out(text: str = "") -> None:
    typer.echo(text)


def describe(run: RunInfo) -> str:
    loss = run.metrics.get("loss")
    tail = f"  loss {loss:.4g}" if isinstance(loss, (int, float)) else ""
    return f"{run.id}  {run.status:<9}  step {run.step}/{run.total_steps}  {run.title}{tail}"


# --- session ---------------------------------------------------------------------------------------
@app.command()
def login(url: str = typer.Argument(..., help="the server, e.g. http://127.0.0.1:8000"),
          token: Optional[str] = typer.Option(None, "--token", help="the bearer token (asked for when absent)")) -> None:
    """Check a token against the server and save both (0600) for later commands."""
    token = token or typer.prompt("token", hide_input=True)
    with Client(url, token) as pw:
        me = pw.me()
    if me.kind == "anonymous":
        raise Failure("token: the server did not accept it")
    if not me.can_write:
        raise Failure("token: a share link can only read one run; use a member's token")
    path = cfg.write_config(url.rstrip("/"), token)
    out(f"logged in to {url.rstrip('/')} as {me.name}; saved in {path}")


@app.command()
def presets(ctx: typer.Context) -> None:
    """The presets a launch can start from."""
    with client(ctx) as pw:
        for p in pw.presets():
            out(f"{p.id:<28} {p.title}")


# --- runs ------------------------------------------------------------------------------------------
@app.command()
def launch(ctx: typer.Context,
           preset: str = typer.Argument(..., help="a preset id (`pinwheel presets`)", autocompletion=complete_presets),
           set_: list[str] = typer.Option([], "--set", help="override a config field: model.lam=0.2 (repeatable)"),
           config: Optional[Path] = typer.Option(None, "--config", help="a JSON file of config overrides", exists=True,
                                                 dir_okay=False),
           title: Optional[str] = typer.Option(None, "--title"),
           watch: bool = typer.Option(False, "--watch", help="follow progress; exit with the run's status")) -> None:
    """Launch a preset (with overrides) and print its page's URL."""
    overrides = parse_sets(set_)
    base = None
    if config is not None:
        try:
            base = json.loads(config.read_text())
        except ValueError as exc:
            raise Failure(f"--config {config}: not JSON ({exc})") from None
    with client(ctx) as pw:
        run = pw.launch(preset, overrides, config=base, title=title)
        out(pw.run_url(run.id))
        if watch:
            follow(pw, run.id)


def follow(pw: Client, run_id: str) -> None:
    """A progress bar on a terminal, a line a status change or tenth of the way otherwise."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    console = Console(stderr=True)
    last = None
    try:
        if console.is_terminal:
            with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                          TimeRemainingColumn(), console=console) as bar:
                task = bar.add_task("queued", total=None)
                for last in pw.watch(run_id):
                    bar.update(task, description=last.status, completed=last.step, total=last.total_steps or None)
        else:
            shown = -1
            for last in pw.watch(run_id):
                tenth = int(10 * last.progress)
                if tenth != shown or last.status != "running":
                    console.print(describe(last), highlight=False)
                    shown = tenth
    except KeyboardInterrupt:
        typer.echo(f"stopped watching; the run goes on: pinwheel show {run_id}", err=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    out(describe(last))
    if last.error:
        typer.echo(f"error: {last.error}", err=True)
    raise typer.Exit(RUN_EXIT.get(last.status, EXIT_ERROR))


@app.command("list")
def list_runs(ctx: typer.Context, q: Optional[str] = typer.Option(None, "--search", "-q", help="words in name/notes/preset"),
              tag: list[str] = typer.Option([], "--tag"), status: Optional[str] = typer.Option(None, "--status"),
              limit: int = typer.Option(50, "--limit", min=1, max=1000),
              as_json: bool = typer.Option(False, "--json", help="the records as JSON")) -> None:
    """Runs, newest first."""
    with client(ctx) as pw:
        runs = pw.runs(q=q, tag=tag or None, status=status, limit=limit)
    if as_json:
        out(json.dumps([r.model_dump(mode="json") for r in runs], indent=2))
        return
    for run in runs:
        out(describe(run))


@app.command()
def show(ctx: typer.Context, run_id: str = typer.Argument(..., help="a run id"),
         as_json: bool = typer.Option(False, "--json")) -> None:
    """One run: status, progress, metrics, URL."""
    with client(ctx) as pw:
        run = pw.run(run_id)
        if as_json:
            out(run.model_dump_json(indent=2))
            return
        out(describe(run))
        out(f"url      {pw.run_url(run.id)}")
        for key, value in sorted(run.metrics.items()):
            out(f"  {key:<24} {value}")
        if run.error:
            out(f"error    {run.error}")


@app.command()
def cancel(ctx: typer.Context, run_id: str = typer.Argument(...)) -> None:
    """Ask a queued or running run to stop (it ends `cancelled` at its next frame)."""
    with client(ctx) as pw:
        pw.cancel(run_id)
    out(f"cancel requested for {run_id}")


@app.command()
def download(ctx: typer.Context, run_id: str = typer.Argument(...),
             what: str = typer.Argument(..., help="weights | bundle | html",
                                        autocompletion=lambda: list(DOWNLOADS)),
             output: Optional[Path] = typer.Option(None, "-o", "--output", help="file or folder (default: here)")) -> None:
    """Download a run's weights (.npz), bundle (.zip) or self-contained page (.html)."""
    with client(ctx) as pw:
        path = pw.download(run_id, what, output)
    out(str(path))


@app.command("import")
def import_(ctx: typer.Context, bundle: Path = typer.Argument(..., help="a bundle .zip from `download RUN bundle`")) -> None:
    """Recreate a run's page from a bundle."""
    with client(ctx) as pw:
        run = pw.import_bundle(bundle)
        out(pw.run_url(run.id))


# --- sweeps ----------------------------------------------------------------------------------------
@app.command()
def sweep(ctx: typer.Context,
          preset: str = typer.Argument(..., help="a preset id (`pinwheel presets`)", autocompletion=complete_presets),
          grid: list[str] = typer.Option([], "--grid", help="field=v1,v2,… : every combination runs (repeatable)"),
          random: list[str] = typer.Option([], "--random", help="field=LOW:HIGH[:log][:int] or field=a,b,c (repeatable)"),
          samples: int = typer.Option(0, "--samples", min=0, help="random draws (with --random)"),
          seed: int = typer.Option(0, "--seed", min=0),
          set_: list[str] = typer.Option([], "--set", help="an override every run shares"),
          title: Optional[str] = typer.Option(None, "--title"),
          watch: bool = typer.Option(False, "--watch", help="wait for every run; exit 0 when all succeeded")) -> None:
    """Queue a grid or random sweep over config fields as runs of one sweep; print its page's URL."""
    axes = dict(parse_axis(g) for g in grid)
    draws = dict(parse_random(r) for r in random)
    if random and samples < 1:
        raise Failure("--samples: a random sweep needs --samples N (N ≥ 1)")
    with client(ctx) as pw:
        info = pw.sweep(preset, axes, draws, samples, parse_sets(set_) or None, seed=seed, title=title)
        out(pw.sweep_url(info.id))
        for run in info.runs:
            out(f"  {pw.run_url(run.id)}  {run.params}")
        if watch:
            while info.active:
                time.sleep(2)
                info = pw.sweep_info(info.id)
            show_sweep_table(info)
            raise typer.Exit(0 if all(r.status == "succeeded" for r in info.runs) else EXIT_FAILED)


def show_sweep_table(info) -> None:
    metric_names = sorted({k for r in info.runs for k in r.metrics})[:6]
    out("  ".join(["run", "status", *info.fields, *metric_names]))
    for r in info.runs:
        cells = [r.id[:8], r.status, *[str(r.params.get(f)) for f in info.fields],
                 *[f"{r.metrics[m]:.4g}" if isinstance(r.metrics.get(m), (int, float)) else "-" for m in metric_names]]
        out("  ".join(cells))


@app.command("sweep-show")
def sweep_show(ctx: typer.Context, sweep_id: str = typer.Argument(...),
               as_json: bool = typer.Option(False, "--json")) -> None:
    """A sweep's runs: their swept values, status and latest metrics."""
    with client(ctx) as pw:
        info = pw.sweep_info(sweep_id)
    if as_json:
        out(info.model_dump_json(indent=2))
    else:
        show_sweep_table(info)


@app.command("sweep-cancel")
def sweep_cancel(ctx: typer.Context, sweep_id: str = typer.Argument(...)) -> None:
    """Cancel every queued or running run of a sweep."""
    with client(ctx) as pw:
        info = pw.cancel_sweep(sweep_id)
    out(f"cancel requested for {sum(r.status in ACTIVE_STATUSES for r in info.runs)} runs of sweep {sweep_id}")


def main() -> None:
    try:
        app()
    except (Failure, PinwheelError, OverrideError) as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_ERROR)


if __name__ == "__main__":
    main()
