"""External runs' bodies (pinwheel.log posts them): a frame is checked here, its size and its panels
(only the kinds the client produces from arrays), before it becomes a pinwheel.protocol.Frame."""
from __future__ import annotations

import json
import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_FRAME_BYTES = 1_000_000  # a frame with a 256-filter atlas is ~50 KB; this leaves room for big banks
PANEL_KINDS = ("filter_grid", "reconstructions", "sparsity")  # the kinds pinwheel.log produces from arrays
NAME = r"^[\w .:/()+\-]{1,100}$"


class ExternalStart(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field("external run", min_length=1, max_length=200)
    config: dict[str, Any] = Field(default_factory=dict, description="the user's own config, recorded as given")
    total_steps: int = Field(0, ge=0, le=10**12, description="0 when unknown")
    environment: dict[str, Any] = Field(default_factory=dict)
    client: dict[str, Any] = Field(default_factory=dict, description="script, host, python of the logging process")
    tags: list[Annotated[str, Field(pattern=r"^[\w][\w .:+-]{0,39}$")]] = Field(default_factory=list, max_length=20)

    @field_validator("config", "environment", "client")
    @classmethod
    def _small(cls, value: dict) -> dict:
        if len(json.dumps(value)) > 50_000:
            raise ValueError("over 50,000 characters of JSON")
        return value


class _Payload(BaseModel):
    model_config = ConfigDict(extra="allow")  # the producers' optional keys (stats, source_tile, …)


class FilterGridPayload(_Payload):
    atlas_png: str = Field(max_length=MAX_FRAME_BYTES)
    count: int = Field(ge=1, le=65_536)
    tile: list[int] = Field(min_length=2, max_length=2)
    pad: int = Field(ge=0, le=16)
    size: list[int] = Field(min_length=2, max_length=2)
    layout: dict[str, Any]


class ReconstructionsPayload(_Payload):
    strip_png: str = Field(max_length=MAX_FRAME_BYTES)
    count: int = Field(ge=1, le=1000)
    tile: list[int] = Field(min_length=2, max_length=2)
    pad: int = Field(ge=0, le=16)


class SparsityPayload(_Payload):
    units: int = Field(ge=1)
    probe_size: int = Field(ge=1)
    l0_mean: float
    abs_hist: dict[str, Any]
    l0_hist: dict[str, Any]


class Panels(BaseModel):
    model_config = ConfigDict(extra="forbid")  # an unknown kind has no renderer
    filter_grid: FilterGridPayload | None = None
    reconstructions: ReconstructionsPayload | None = None
    sparsity: SparsityPayload | None = None


class ExternalFrame(BaseModel):
    model_config = ConfigDict(extra="forbid")
    step: int = Field(ge=0, le=10**12)
    total_steps: int | None = Field(None, ge=0, le=10**12)
    wall_time: float = Field(ge=0)
    time: float | None = Field(None, description="when the client made the frame (Unix seconds)")
    metrics: dict[Annotated[str, Field(pattern=NAME)], float | None] = Field(default_factory=dict, max_length=200)
    panels: Panels = Field(default_factory=Panels)

    @field_validator("metrics")
    @classmethod
    def _finite(cls, value: dict) -> dict:
        return {k: (v if v is not None and math.isfinite(v) else None) for k, v in value.items()}


class ExternalFinish(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: Literal["succeeded", "failed", "cancelled"] = "succeeded"
    error: str | None = Field(None, max_length=2000)


class Control(BaseModel):
    run_id: str
    status: str
    should_stop: bool
