"""Config of the locally connected auto-encoder without weight sharing (docs/models.md §5)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from .common import NaturalImagesData, Strict


def unit_grid_side(image_size: int, receptive_field: int, stride: int, grid: int | None = None,
                   wrap: bool = False) -> int:
    """Units per side: `grid` when given, else one unit every `stride` pixels with its field inside the image
    (anywhere on a periodic image, with `wrap`)."""
    if grid is not None:
        return grid
    return -(-image_size // stride) if wrap else (image_size - receptive_field) // stride + 1


class LocalFiltersConfig(Strict):
    """z_u = ReLU(⟨W_e[u], x_{R(u)}⟩ + b_u) for every unit u on a grid over the image; x̂ = Σ_u z_u W_d[u]."""

    kind: Literal["local_filters"] = "local_filters"
    receptive_field: int = Field(8, ge=2, le=64, description="k: side of each unit's square receptive field, pixels")
    stride: int = Field(1, ge=1, le=16, description="pixels between neighbouring units on the grid")
    grid: int | None = Field(None, ge=2, le=128, description="units per side, spread evenly over the image "
                             "(several units may share a receptive field); overrides stride")
    pool: int = Field(3, ge=1, le=15, description="side of the neighbourhood of units on the grid that forms a group")
    pool_sigma: float | None = Field(1.0, gt=0, description="Gaussian weights inside a pool (grid units); "
                                     "none: flat pools")
    anneal_sigma_from: float | None = Field(None, gt=0, description="start the Gaussian pools this wide and "
                                            "shrink them linearly to pool_sigma (a coarse map first, refined later)")
    anneal_steps: int = Field(1000, ge=1, description="steps over which the pools shrink")
    lam: float = Field(0.2, ge=0, description="λ, weight of the group penalty over grid neighbourhoods")
    lam_warmup_steps: int = Field(300, ge=0, description="ramp λ linearly from 0 over these steps")
    wrap: bool = Field(False, description="a torus without borders: the image is made periodic (its periodic "
                       "component), receptive fields run over its edges and wrap round, and the pools wrap round "
                       "the unit grid; every unit still owns its weights")
    envelope_sigma: float | None = Field(None, gt=0, le=16, description="sub-pixel retinotopy (needs grid and "
                                         "wrap): unit (i, j) gets its own field centre (i, j)·image_size/grid pixels, "
                                         "its k×k window is the pixels nearest that centre, and a fixed Gaussian "
                                         "envelope of this σ (pixels) multiplies its encoder and decoder weights, so no "
                                         "two units see the same input; none: fields on whole pixels, several units "
                                         "sharing one")
    init_smoothing: float | None = Field(None, gt=0, le=16, description="with envelope_sigma: start from low-pass "
                                         "random weights, white noise blurred by a Gaussian of this σ (pixels) over "
                                         "each window; none: white noise")
    augment: bool = Field(False, description="show every training image under a random one of the square's 8 "
                          "rotations / flips, so that no orientation dominates because the photographs favour it")

    @model_validator(mode="after")
    def _pool_is_odd(self):
        if self.pool % 2 == 0:
            raise ValueError(f"pool: a neighbourhood centred on its unit needs an odd side, got {self.pool}")
        if self.anneal_sigma_from is not None and self.pool_sigma is None:
            raise ValueError("anneal_sigma_from: annealing shrinks Gaussian pools; set pool_sigma too")
        if self.envelope_sigma is not None and (self.grid is None or not self.wrap):
            raise ValueError("envelope_sigma: sub-pixel field centres are spread over a periodic image by a unit "
                             "torus; set grid and wrap: true")
        return self

    def check_data(self, data) -> None:
        """Cross-check with the data section (called by RunConfig)."""
        if not isinstance(data, NaturalImagesData):
            raise ValueError(f"data.kind: local filters are trained on whole images (natural_images), got {data.kind!r}")
        if self.receptive_field > data.image_size:
            raise ValueError(f"model.receptive_field: {self.receptive_field} is larger than the "
                             f"{data.image_size}×{data.image_size} image (data.image_size)")
        side = unit_grid_side(data.image_size, self.receptive_field, self.stride, self.grid, self.wrap)
        if side < self.pool:
            raise ValueError(f"model.pool: the unit grid is only {side}×{side}, smaller than pool={self.pool}")


PINWHEELS_PRESET = {
    "id": "pinwheels-local",
    "title": "Pin-wheels: local filters without weight sharing",
    "description": "Whole 12×12 whitened images made periodic (their periodic component), each shown under a "
                   "random rotation / flip; a 24×24 torus of units (2 per pixel along each side, 4 to every "
                   "receptive-field position), each with its own 4×4 receptive field that wraps round the image "
                   "and no shared weights, trained with group sparsity over Gaussian neighbourhoods on the torus "
                   "that shrink from σ = 2.5 to 1.2 (after Gregor & LeCun 2010). No border: every unit is in the "
                   "map's valid region, which spans 2–3.5 column periods Λ (docs/pinwheels.md: the map is still rough).",
    "config": {
        "model": {"kind": "local_filters", "receptive_field": 4, "grid": 24, "wrap": True, "pool": 5,
                  "pool_sigma": 1.2, "anneal_sigma_from": 2.5, "anneal_steps": 1500, "lam": 0.5,
                  "lam_warmup_steps": 300, "augment": True},
        "data": {"kind": "natural_images", "image_size": 12, "pool_size": 5000},
        "train": {"steps": 10000, "batch_size": 32, "lr": 5e-3},
    },
}

PRESETS = [PINWHEELS_PRESET]

__all__ = ["LocalFiltersConfig", "PRESETS", "unit_grid_side"]
