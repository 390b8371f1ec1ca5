from __future__ import annotations

from fastapi import APIRouter
from pinwheel.configs import PRESETS, RunConfig

from ..schemas import Preset

router = APIRouter(prefix="/api", tags=["presets"])


@router.get("/presets", response_model=list[Preset])
def list_presets() -> list[dict]:
    """Every preset, its config resolved against the defaults (what a launch of it will run)."""
    return [{**p, "config": RunConfig.model_validate(p["config"]).model_dump()} for p in PRESETS]


@router.get("/schema")
def config_schema() -> dict:
    """The JSON schema of a run config (the launch form is generated from it)."""
    return RunConfig.model_json_schema()
