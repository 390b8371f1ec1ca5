"""Every run config, validated by pydantic. Torch-free: the backend validates with it.

A model family adds its config class to `MODEL_CONFIGS` and its presets to `PRESETS`.
"""
from __future__ import annotations

from typing import Annotated, Union

from pydantic import Field, model_validator

from . import conv_stack, group_sparse, lateral, local_filters
from . import drsae, lista  # Science I families
from .common import DataConfig, DigitsData, NaturalImagesData, NaturalPatchesData, Strict, TrainConfig

MODEL_CONFIGS = (group_sparse.GroupSparseConfig, conv_stack.ConvStackConfig, local_filters.LocalFiltersConfig, lateral.LateralConfig,)
_FAMILY_PRESETS = (group_sparse.PRESETS, conv_stack.PRESETS, local_filters.PRESETS, lateral.PRESETS,)
MODEL_CONFIGS += (drsae.DrSAEConfig, lista.ListaConfig)
_FAMILY_PRESETS += (drsae.PRESETS, lista.PRESETS)

ModelConfig = Annotated[Union[MODEL_CONFIGS], Field(discriminator="kind")]  # type: ignore[valid-type]


class RunConfig(Strict):
    """What a run trains, on what, and how: the resolved config stored with every run."""

    model: ModelConfig = Field(default_factory=group_sparse.GroupSparseConfig)
    data: DataConfig = Field(default_factory=NaturalPatchesData)
    train: TrainConfig = Field(default_factory=TrainConfig)

    @model_validator(mode="after")
    def _model_fits_data(self):
        """A family whose model depends on the data's shape checks it here (`check_data`, raises ValueError)."""
        check = getattr(self.model, "check_data", None)
        if check is not None:
            check(self.data)
        return self


PRESETS: list[dict] = [p for family in _FAMILY_PRESETS for p in family]


def preset_by_id(preset_id: str) -> dict | None:
    return next((p for p in PRESETS if p["id"] == preset_id), None)


def deep_merge(base: dict, override: dict) -> dict:
    """Preset values overridden by the user's config, key by key. A new `kind` replaces the whole section."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and value.get("kind", out[key].get("kind")) == out[key].get("kind"):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


__all__ = ["RunConfig", "ModelConfig", "DataConfig", "TrainConfig", "PRESETS", "preset_by_id", "deep_merge",
           "NaturalPatchesData", "NaturalImagesData", "DigitsData", "Strict"]
