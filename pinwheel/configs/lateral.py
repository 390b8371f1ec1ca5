"""Config of structured sparse coding by lateral inhibition (docs/models.md §6, Gregor, Szlam & LeCun 2011)."""
from __future__ import annotations

from typing import Annotated, Literal, Union

import numpy as np
from pydantic import Field, model_validator

from .common import Strict
from .group_sparse import tree_size


class TreeMask(Strict):
    """Units are the nodes of a complete tree; S_ij = 0 for ancestor/descendant pairs (one branch)."""

    kind: Literal["tree"] = "tree"
    branching: int = Field(3, ge=2, le=16)
    depth: int = Field(3, ge=2, le=10, description="number of levels, root included")


class GridMask(Strict):
    """Units on a side×side grid; S_ij = 0 between units at most `radius` apart (grid units) and, when
    `outer_radius` is set, between units farther apart than it: inhibition is then local, an annulus
    around each unit, as lateral inhibition in cortex, and sets the map's period (a few outer radii)."""

    kind: Literal["grid"] = "grid"
    radius: float = Field(1.5, gt=0, description="units at most this far apart on the grid do not inhibit each other")
    outer_radius: float | None = Field(None, gt=0, description="units farther apart than this do not inhibit each other "
                                                               "(none: inhibition reaches the whole grid)")
    wrap: bool = Field(True, description="the grid is a torus (no edges)")

    @model_validator(mode="after")
    def _annulus(self):
        if self.outer_radius is not None and self.outer_radius <= self.radius:
            raise ValueError(f"outer_radius: {self.outer_radius} must exceed radius {self.radius} "
                             "(the inhibition annulus would be empty)")
        return self


def grid_distances(side: int, unit: int, wrap: bool) -> np.ndarray:
    """(side·side,) distances on the grid from `unit` to every unit (row-major), wrapped on a torus."""
    r, c = np.divmod(np.arange(side * side), side)
    dr, dc = np.abs(r - r[unit]), np.abs(c - c[unit])
    if wrap:
        dr, dc = np.minimum(dr, side - dr), np.minimum(dc, side - dc)
    return np.hypot(dr, dc)


MaskConfig = Annotated[Union[TreeMask, GridMask], Field(discriminator="kind")]


def tree_mask_degrees(branching: int, depth: int) -> list[int]:
    """Allowed (non-zero) entries per row of S for a tree mask, by level (root first)."""
    n = tree_size(branching, depth)
    out = []
    for level in range(depth):
        ancestors = level
        descendants = tree_size(branching, depth - level) - 1
        out.append(n - 1 - ancestors - descendants)
    return out


class LateralConfig(Strict):
    """E(x, z) = ½‖x − W_d z‖² + λ‖z‖₁ + |z|ᵀ S |z|; z inferred by proximal gradient."""

    kind: Literal["lateral"] = "lateral"
    units: int = Field(40, ge=2, le=4_096, description="m, the number of code units")
    lam: float = Field(0.3, ge=0, description="λ, weight of ‖z‖₁")
    mask: MaskConfig = Field(default_factory=TreeMask)
    beta: float = Field(0.05, gt=0, description="β, upper bound on every entry of S")
    row_sum: float = Field(0.5, gt=0, description="Σ_j S_ij for every unit that may inhibit anyone")
    row_sum_start: float | None = Field(None, gt=0, description="row sum at step 0, moved linearly to row_sum over "
                                                                "row_sum_steps training steps (none: row_sum throughout)")
    row_sum_steps: int = Field(0, ge=0, le=10_000_000, description="steps of the row-sum schedule (with row_sum_start)")
    learn_S: bool = Field(True, description="learn S by projected gradient ascent (else S stays at its start)")
    s_lr: float = Field(0.05, gt=0, description="η, step of the ascent on S")
    inference_steps: int = Field(60, ge=1, le=2_000, description="proximal-gradient steps per batch")
    nonnegative: bool = Field(False, description="restrict codes to z ≥ 0")

    @model_validator(mode="after")
    def _mask_fits(self):
        m = self.mask
        if isinstance(m, TreeMask):
            need = tree_size(m.branching, m.depth)
            if need != self.units:
                raise ValueError(f"units: a complete tree of depth {m.depth} and branching {m.branching} "
                                 f"has {need} nodes; set units={need}")
            degrees = [d for d in tree_mask_degrees(m.branching, m.depth) if d > 0]
        else:
            side = round(self.units**0.5)
            if side * side != self.units:
                raise ValueError(f"units: a 2-D grid needs a square number of units, got {self.units}")
            reach = side / 2 if m.wrap else side - 1
            if m.radius >= reach * 2**0.5:
                raise ValueError(f"mask.radius: with radius {m.radius} every unit of the {side}×{side} grid is "
                                 "a neighbour of every other, so S would be all zero")
            outer = np.inf if m.outer_radius is None else m.outer_radius
            units = [0] if m.wrap else range(self.units)  # on a torus every unit sees the same neighbourhood
            degrees = [int(((d > m.radius) & (d <= outer)).sum()) for d in (grid_distances(side, u, m.wrap) for u in units)]
        if not degrees or min(degrees) == 0:
            raise ValueError("mask: the mask leaves no pair of units free to inhibit each other")
        for name, r in (("row_sum", self.row_sum), ("row_sum_start", self.row_sum_start)):
            if r is not None and r > self.beta * min(degrees):
                raise ValueError(f"{name}: {r} cannot be reached with entries ≤ beta={self.beta} on a row "
                                 f"with only {min(degrees)} free entries (need {name} ≤ {self.beta * min(degrees):g})")
        if (self.row_sum_start is None) != (self.row_sum_steps == 0):
            raise ValueError("row_sum_start and row_sum_steps: set both (a schedule over row_sum_steps ≥ 1 steps) "
                             "or neither")
        return self

    def row_sum_at(self, step: int) -> float:
        """The row sum S is projected onto at training step `step` (row_sum without a schedule)."""
        if self.row_sum_start is None:
            return self.row_sum
        f = min(max(step, 0) / self.row_sum_steps, 1.0)
        return self.row_sum_start + f * (self.row_sum - self.row_sum_start)


LATERAL_TREE_PRESET = {
    "id": "lateral-tree",
    "title": "Lateral inhibition: tree",
    "description": "Sparse coding of whitened 8×8 patches with 40 non-negative units on a tree (branching 3, depth 4). "
                   "S is zero along each branch and learned elsewhere by projected ascent: every unit "
                   "inhibits all but its own branch, so a patch is coded by a root-to-leaf chain whose filters "
                   "share an orientation, coarse at the root and finer towards the leaves (Gregor, Szlam & LeCun 2011). "
                   "Codes are non-negative, so a unit codes one polarity and a child refines its parent rather "
                   "than cancelling it. Inhibition starts strong (row sum 25), so the branches form, and relaxes "
                   "to row sum 5 over the first 4,000 steps, so that several branches code a patch together.",
    "config": {
        "model": {"kind": "lateral", "units": 40, "lam": 0.05, "mask": {"kind": "tree", "branching": 3, "depth": 4},
                  "beta": 1.0, "row_sum": 5.0, "row_sum_start": 25.0, "row_sum_steps": 4000, "learn_S": True,
                  "s_lr": 10.0, "inference_steps": 60, "nonnegative": True},
        "data": {"kind": "natural_patches", "patch_size": 8, "pool_size": 20000},
        "train": {"steps": 8000, "batch_size": 128, "lr": 3e-3},
    },
}

LATERAL_2D_PRESET = {
    "id": "lateral-2d",
    "title": "Lateral inhibition: 2-D map",
    "description": "Sparse coding of whitened 10×10 patches with 256 units on a 16×16 torus; S is zero between "
                   "grid neighbours, learned by ascent on an annulus (2 < distance ≤ 4.5 units) and zero beyond, "
                   "so neighbours may be active together, units a few steps apart compete, and a topographic map "
                   "of orientation with a period of a few units forms — the mirror image of group sparsity.",
    "config": {
        "model": {"kind": "lateral", "units": 256, "lam": 0.1,
                  "mask": {"kind": "grid", "radius": 2.0, "outer_radius": 4.5, "wrap": True},
                  "beta": 2.0, "row_sum": 30.0, "learn_S": True, "s_lr": 10.0, "inference_steps": 40},
        "data": {"kind": "natural_patches", "patch_size": 10, "pool_size": 20000},
        "train": {"steps": 2000, "batch_size": 64, "lr": 3e-3},
    },
}

PRESETS = [LATERAL_TREE_PRESET, LATERAL_2D_PRESET]

__all__ = ["LateralConfig", "TreeMask", "GridMask", "PRESETS", "tree_mask_degrees"]
