"""Config of the group-sparse auto-encoder / sparse coder (docs/models.md §3) and its group structures."""
from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field, model_validator

from .common import NaturalPatchesData, Strict, TrainConfig


class Blocks1D(Strict):
    """Units 0..m-1 cut into consecutive blocks of `size` (no overlap)."""

    kind: Literal["blocks_1d"] = "blocks_1d"
    size: int = Field(4, ge=1, le=16_384)


class Windows1D(Strict):
    """Sliding windows of `size` every `stride` units on a ring (overlapping when stride < size)."""

    kind: Literal["windows_1d"] = "windows_1d"
    size: int = Field(4, ge=1, le=16_384)
    stride: int = Field(2, ge=1, le=16_384)


class Torus2D(Strict):
    """Units on a grid×grid torus; groups are pool×pool windows every `stride` units."""

    kind: Literal["torus_2d"] = "torus_2d"
    pool: int = Field(6, ge=1, le=128)  # the largest torus is 128×128 (16,384 units)
    stride: int = Field(3, ge=1, le=128)
    gaussian_sigma: float | None = Field(
        None, gt=0, description="weight units inside a pool by a Gaussian of this width (grid units)")


class Tree(Strict):
    """Units are the nodes of a complete tree; every subtree is a group (Jenatton et al. 2011)."""

    kind: Literal["tree"] = "tree"
    # bounded so that counting the nodes stays cheap (depth 2e7 took the web server 11 s); the exact
    # check against units is in GroupSparseConfig
    branching: int = Field(2, ge=1, le=16_384)
    depth: int = Field(4, ge=1, le=16_384, description="number of levels, root included")


class RetinotopicWindows(Strict):
    """Each unit's encoder row and decoder atom are multiplied by a fixed Gaussian window on the image whose
    centre follows the unit's place on the torus (a G×G torus over an H×W patch: unit (a, b) at pixel
    (a·H/G, b·W/G)); the patch is replaced by its periodic component, so the image wraps as the torus does."""

    kind: Literal["gaussian"] = "gaussian"
    sigma: float = Field(1.5, gt=0, le=32, description="width of each unit's Gaussian window, pixels (distances "
                         "measured round the periodic patch)")


GroupsConfig = Annotated[Union[Blocks1D, Windows1D, Torus2D, Tree], Field(discriminator="kind")]


def tree_size(branching: int, depth: int) -> int:
    return depth if branching == 1 else (branching**depth - 1) // (branching - 1)


def tree_size_upto(branching: int, depth: int, cap: int) -> int:
    """tree_size, or cap + 1 as soon as the count passes cap: a few steps whatever the depth."""
    total, level = 0, 1
    for _ in range(depth):
        total += level
        if total > cap:
            return cap + 1
        level *= branching
    return total


class GroupSparseConfig(Strict):
    """z = ReLU(W_e x + b) (auto-encoder) or z = argmin ½‖x − W_d z‖² + λΩ(z) (sparse coding)."""

    kind: Literal["group_sparse"] = "group_sparse"
    units: int = Field(256, ge=1, le=16_384, description="m, the number of code units")
    lam: float = Field(0.1, ge=0, description="λ, weight of the group penalty Ω(z)")
    lam_warmup_steps: int = Field(0, ge=0, description="ramp λ linearly from 0 over these steps, so filters "
                                  "find structure before the penalty can silence every unit")
    groups: GroupsConfig = Field(default_factory=lambda: Torus2D())
    form: Literal["autoencoder", "sparse_coding"] = "autoencoder"
    inference_steps: int = Field(30, ge=1, le=1_000, description="proximal steps (sparse-coding form)")
    dictionary_update: Literal["adam", "online"] = Field(
        "adam", description="sparse-coding form: W_d by the optimizer ('adam': train.optimizer at train.lr) or by "
        "online dictionary learning ('online', Mairal et al. 2009: sufficient statistics and a block-coordinate "
        "sweep over the atoms, no learning rate; atoms start as training patches)")
    online_forgetting: float = Field(4.0, ge=0, le=16, description="online update: ρ in the forgetting factor "
                                     "β_t = (1 − 1/t)^ρ of the statistics (batch s weighs s^ρ; 0 never forgets)")
    augment: bool = Field(False, description="auto-encoder: show every training patch under a random one of the "
                          "square's 8 symmetries (rotations by 90°, flips), so that neither pixel axis is favoured")
    retinotopy: RetinotopicWindows | None = Field(
        None, description="auto-encoder on a 2-D torus only: confine each unit's filters to a Gaussian window that "
        "moves with its place on the torus, mapped onto the (periodic) patch; this pins the map's period to "
        "units-per-pixel × window width (docs/pinwheels.md). Off by default: global filters")

    @model_validator(mode="after")
    def _groups_fit_units(self):
        if self.dictionary_update == "online" and self.form != "sparse_coding":
            raise ValueError("dictionary_update: 'online' needs form 'sparse_coding' (the auto-encoder's encoder "
                             "is learned by gradient)")
        g = self.groups
        if isinstance(g, Torus2D):
            side = round(self.units**0.5)
            if side * side != self.units:
                raise ValueError(f"units: a 2-D torus needs a square number of units, got {self.units}")
            if g.pool > side:
                raise ValueError(f"groups.pool: pool {g.pool} is larger than the {side}×{side} grid")
            if g.stride > side:
                raise ValueError(f"groups.stride: stride {g.stride} is larger than the {side}×{side} grid")
        elif isinstance(g, (Blocks1D, Windows1D)):
            if g.size > self.units:
                raise ValueError(f"groups.size: group size {g.size} is larger than units={self.units}")
            if isinstance(g, Blocks1D) and self.units % g.size:
                raise ValueError(f"groups.size: {self.units} units do not split into blocks of {g.size}")
        elif isinstance(g, Tree):
            need = tree_size_upto(g.branching, g.depth, self.units)
            if need > self.units:
                raise ValueError(f"groups.depth: a tree of depth {g.depth} and branching {g.branching} "
                                 f"has more than units={self.units} nodes")
            if need != self.units:
                raise ValueError(f"units: a complete tree of depth {g.depth} and branching {g.branching} "
                                 f"has {need} nodes; set units={need}")
        if self.retinotopy is not None and not isinstance(g, Torus2D):
            raise ValueError("retinotopy: retinotopic windows need groups of kind 'torus_2d' (the window centres "
                             f"follow the units' places on the torus), got '{g.kind}'")
        if self.augment and self.form != "autoencoder":
            raise ValueError("augment: augmentation is implemented for form 'autoencoder' only")
        if self.retinotopy is not None and self.form != "autoencoder":
            raise ValueError("retinotopy: retinotopic windows are implemented for form 'autoencoder' only")
        return self


TOPOGRAPHIC_PRESET = {
    "id": "topographic-natural",
    "title": "Topographic map on natural images",
    "description": "1,024 units on a 32×32 torus over 12×12 whitened patches made periodic, each unit's filters "
                   "confined to a Gaussian window (σ = 1.75 pixels) that moves with its place on the torus (8 units "
                   "per 3 pixels), overlapping Gaussian pools (5×5, σ = 1.25, one per unit; after Kavukcuoglu et al. "
                   "2009): localised edge filters whose orientation changes smoothly across the torus, with about "
                   "three column periods a side and their pin-wheels (docs/pinwheels.md).",
    "config": {
        "model": {"kind": "group_sparse", "units": 1024, "lam": 0.3, "lam_warmup_steps": 500,
                  "groups": {"kind": "torus_2d", "pool": 5, "stride": 1, "gaussian_sigma": 1.25},
                  "retinotopy": {"kind": "gaussian", "sigma": 1.75}},
        "data": {"kind": "natural_patches", "patch_size": 12},
        "train": {"steps": 5000, "batch_size": 256, "lr": 7e-3},
    },
}

BLOCKS_PRESET = {
    "id": "groups-1d-blocks",
    "title": "Group sparsity: 1-D blocks",
    "description": "Sparse coding (FISTA with the block prox) of whitened 8×8 patches with 64 atoms in 16 blocks "
                   "of 4: whole blocks switch off together, and the atoms of a block become related.",
    "config": {
        "model": {"kind": "group_sparse", "form": "sparse_coding", "units": 64, "lam": 2.0,
                  "inference_steps": 30, "groups": {"kind": "blocks_1d", "size": 4}},
        "data": {"kind": "natural_patches", "patch_size": 8},
        "train": {"steps": 3000, "batch_size": 128, "lr": 3e-3},
    },
}

TREE_PRESET = {
    "id": "groups-tree",
    "title": "Group sparsity: tree",
    "description": "Sparse coding with tree-structured groups (Jenatton et al. 2011): 63 atoms on a binary tree "
                   "of depth 6, every subtree a group, exact leaves-to-root prox. A node can be active only if "
                   "its ancestors are: coarse filters near the root, refinements at the leaves.",
    "config": {
        "model": {"kind": "group_sparse", "form": "sparse_coding", "units": 63, "lam": 0.4,
                  "inference_steps": 30, "groups": {"kind": "tree", "branching": 2, "depth": 6}},
        "data": {"kind": "natural_patches", "patch_size": 8},
        "train": {"steps": 3000, "batch_size": 128, "lr": 3e-3},
    },
}

PRESETS = [TOPOGRAPHIC_PRESET, BLOCKS_PRESET, TREE_PRESET]

__all__ = ["GroupSparseConfig", "GroupsConfig", "PRESETS", "NaturalPatchesData", "TrainConfig", "tree_size"]
