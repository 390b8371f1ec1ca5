"""Sweeps' bodies and answers: a grid or random sample of config variants, and the sweep's runs."""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

MAX_RUNS = 64  # runs one sweep may queue


class RandomAxis(BaseModel):
    model_config = ConfigDict(extra="forbid")
    low: float
    high: float
    log: bool = Field(False, description="draw uniformly in log space (both bounds > 0)")
    integer: bool = Field(False, description="round draws to integers")


class SweepRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    preset: str | None = None
    config: dict[str, Any] | None = Field(None, description="overrides every run shares")
    grid: dict[str, list[Any]] = Field(default_factory=dict, description="field → values; every combination runs")
    random: dict[str, RandomAxis | list[Any]] = Field(default_factory=dict,
                                                      description="field → range or choices, drawn `samples` times")
    samples: int = Field(0, ge=0, le=MAX_RUNS)
    seed: int = Field(0, ge=0, le=2**32 - 1)
    title: str | None = Field(None, max_length=150)


class SweepRun(BaseModel):
    id: str
    status: str
    title: str
    step: int
    total_steps: int
    params: dict[str, Any]
    metrics: dict[str, Any]
    error: str | None = None


class SweepOut(BaseModel):
    id: str
    title: str
    fields: list[str]
    runs: list[SweepRun]
    counts: dict[str, int]
