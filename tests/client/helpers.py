"""Running the installed `pinwheel` command as a user does, with its own config file."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

CLI = Path(sys.executable).with_name("pinwheel")  # the console script pyproject installs
SMALL = ["--set", "data.pool_size=2000", "--set", "model.units=64", "--set", "model.groups.pool=4",
         "--set", "model.groups.stride=2", "--set", "train.batch_size=64", "--set", "train.frame_every_steps=20"]


def cli(args: list[str], config: Path, env: dict | None = None, timeout: float = 240) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if not k.startswith("PINWHEEL_")}
    full.update({"PINWHEEL_CONFIG": str(config), "COLUMNS": "200", **(env or {})})
    return subprocess.run([str(CLI), *args], capture_output=True, text=True, env=full, timeout=timeout)


def cli_background(args: list[str], config: Path) -> subprocess.Popen:
    full = {k: v for k, v in os.environ.items() if not k.startswith("PINWHEEL_")}
    full.update({"PINWHEEL_CONFIG": str(config), "COLUMNS": "200"})
    return subprocess.Popen([str(CLI), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=full)
