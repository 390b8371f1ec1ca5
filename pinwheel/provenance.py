"""The code version a run was made with: git commit and dirty flag when available, else the
package version. Plain Python (no torch), shared by the backend and the worker."""
from __future__ import annotations

import subprocess
from functools import lru_cache
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@lru_cache
def code_version() -> dict:
    try:
        version = metadata.version("pinwheel")
    except metadata.PackageNotFoundError:
        version = None
    record: dict = {"package_version": version, "git_commit": None, "git_dirty": None}
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                                timeout=5, check=True).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                                capture_output=True, text=True, timeout=5, check=True).stdout
        record.update(git_commit=commit or None, git_dirty=bool(status.strip()))
    except (OSError, subprocess.SubprocessError):
        pass  # not a checkout (an installed package, a slim image): the package version stands
    return record
