"""Where Pinwheel keeps its files unless told otherwise: the one source of path defaults.

Everything lives under one folder, PINWHEEL_VAR_DIR (default: var/ in the checkout, wherever the
process was started from): the database, the runs' files (artifacts/), the data sets and users'
folders (data/). Each can be moved on its own (PINWHEEL_ARTIFACTS_DIR, PINWHEEL_DATA_ROOT, …). The
backend's and the worker's Settings both derive from PathSettings, so the two sides agree.
Torch-free and FastAPI-free.
"""
from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parents[1]  # the checkout


class PathSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PINWHEEL_", extra="ignore")

    var_dir: Path = Field(ROOT / "var", description="where everything is written unless moved: the store, runs' "
                          "files, data; make run's logs, PIDs and Redis data")
    artifacts_dir: Path = Field(default_factory=lambda f: f["var_dir"] / "artifacts",
                                description="runs' files: checkpoints, weights (default: $PINWHEEL_VAR_DIR/artifacts)")
    data_root: Path = Field(default_factory=lambda f: f["var_dir"] / "data",
                            description="data sets and users' folders (image_folder, idx_folder live under it; "
                            "default: $PINWHEEL_VAR_DIR/data)")


def data_root() -> Path:
    """The data root from the environment, for library code called without one."""
    return PathSettings().data_root
