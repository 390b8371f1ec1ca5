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
    envelope_sigma: float | None = Field(None, gt=0, le=16, description="sub-pixel retinotopy (needs grid): "
                                         "unit (i, j) gets its own field centre (i, j)·image_size/grid pixels, its "
                                         "k×k window is the pixels nearest that centre, and a fixed Gaussian envelope "
                                         "of this σ (pixels) multiplies its encoder and decoder weights, so no two "
                                         "units see the same input; none: fields on whole pixels, several units "
                                         "sharing one")
    envelope_cut: float | None = Field(None, gt=0, le=8, description="with envelope_sigma: the envelope is 0 "
                                       "beyond this many σ from the unit's centre (a round field, as the "
                                       "topographic preset's windows are cut at 3σ); none: the whole k×k window")
    lr_anneal: tuple[int, int] | None = Field(None, description="(first, last) step: from the first the learning "
                                              "rate falls by a half cosine to lr_floor × train.lr at the last, and "
                                              "stays there (the map settles without Adam's step-to-step jitter); "
                                              "none: train.lr throughout")
    lr_floor: float = Field(0.05, gt=0, le=1, description="with lr_anneal: the final learning rate, a fraction of "
                            "train.lr")
    augment: bool = Field(False, description="show every training image under a random one of the square's 8 "
                          "rotations / flips, so that no orientation dominates because the photographs favour it")

    @model_validator(mode="after")
    def _pool_is_odd(self):
        if self.pool % 2 == 0:
            raise ValueError(f"pool: a neighbourhood centred on its unit needs an odd side, got {self.pool}")
        if self.anneal_sigma_from is not None and self.pool_sigma is None:
            raise ValueError("anneal_sigma_from: annealing shrinks Gaussian pools; set pool_sigma too")
        if self.envelope_sigma is not None and self.grid is None:
            raise ValueError("envelope_sigma: sub-pixel field centres are spread over the image by the unit grid; "
                             "set grid (units per side)")
        if self.lr_anneal is not None and not 0 <= self.lr_anneal[0] < self.lr_anneal[1]:
            raise ValueError(f"lr_anneal: (first, last) step with 0 ≤ first < last, got {tuple(self.lr_anneal)}")
        if self.envelope_cut is not None and self.envelope_sigma is None:
            raise ValueError("envelope_cut: it cuts the Gaussian envelope of sub-pixel retinotopy; set envelope_sigma")
        if self.envelope_cut is not None and self.envelope_cut * self.envelope_sigma < 0.5:
            raise ValueError(f"envelope_cut: {self.envelope_cut}·σ = {self.envelope_cut * self.envelope_sigma:.2f} px "
                             "would leave some units without a single pixel; at least 0.5 px")
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
    "description": "Whole 12×12 whitened images made periodic (their periodic component); a 32×32 torus of units, "
                   "each with its own field centre (2.67 units per pixel, so neighbours' fields are 0.375 px apart "
                   "and no two units see the same input), its own weights under a fixed Gaussian envelope (σ = 1.75 "
                   "px, cut at 3σ: a round field) and nothing shared, trained with group sparsity over 5×5 Gaussian "
                   "neighbourhoods (σ = 1.25 units) on the torus (after Gregor & LeCun 2010), the learning rate "
                   "annealed over the last 3,000 steps. The retinotopy pins the column period near 10 units: about "
                   "3.1 periods a side (docs/pinwheels.md).",
    "config": {
        "model": {"kind": "local_filters", "receptive_field": 12, "grid": 32, "wrap": True, "envelope_sigma": 1.75,
                  "envelope_cut": 3.0, "pool": 5, "pool_sigma": 1.25, "lam": 0.903, "lam_warmup_steps": 500,
                  "lr_anneal": [7000, 10000], "lr_floor": 0.05},
        "data": {"kind": "natural_images", "image_size": 12, "pool_size": 50000},
        "train": {"steps": 10000, "batch_size": 256, "lr": 7e-3},
    },
}

PRESETS = [PINWHEELS_PRESET]

__all__ = ["LocalFiltersConfig", "PRESETS", "unit_grid_side"]
