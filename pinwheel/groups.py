"""Group structures P_j over code units and the group-sparsity penalty (science.md §3).

Ω(z) = Σ_j sqrt(Σ_{i∈P_j} w_ji z_i²). A structure is stored as a dense weight matrix
w (n_groups × m), w_ji > 0 iff unit i belongs to group j; m is at most a few thousand, so a
dense matrix is both the simplest and the fastest form (one matmul per batch).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from .configs.group_sparse import Blocks1D, GroupsConfig, Torus2D, Tree, Windows1D

EPS = 1e-8  # keeps the gradient of sqrt finite at z_P = 0


@dataclass
class GroupStructure:
    kind: str
    weights: torch.Tensor  # (n_groups, m)
    grid: tuple[int, int] | None = None  # units laid on rows × cols (topographic models)
    parents: np.ndarray | None = None  # tree: parent index per unit, -1 for the root
    group_roots: np.ndarray | None = None  # tree: the node whose subtree each group is
    meta: dict = field(default_factory=dict)

    @property
    def n_groups(self) -> int:
        return self.weights.shape[0]

    @property
    def units(self) -> int:
        return self.weights.shape[1]

    def to(self, device) -> "GroupStructure":
        self.weights = self.weights.to(device)
        return self

    def group_norms(self, z: torch.Tensor) -> torch.Tensor:
        """‖z_{P_j}‖_w for every group: (batch, m) → (batch, n_groups)."""
        return torch.sqrt(z.pow(2) @ self.weights.T + EPS)

    def penalty(self, z: torch.Tensor) -> torch.Tensor:
        """Ω(z) per example: (batch, m) → (batch,)."""
        return self.group_norms(z).sum(dim=1)

    def membership(self) -> list[list[int]]:
        """For each unit, the groups it belongs to (for hover text and analysis)."""
        w = self.weights.detach().cpu().numpy() > 0
        return [np.flatnonzero(w[:, i]).tolist() for i in range(w.shape[1])]

    def as_arrays(self) -> dict[str, np.ndarray]:
        """The structure as plain arrays, so weights.npz can be analysed without Pinwheel."""
        out = {"group_weights": self.weights.detach().cpu().numpy().astype(np.float32)}
        if self.grid is not None:
            out["grid_shape"] = np.asarray(self.grid, dtype=np.int64)
        if self.parents is not None:
            out["tree_parents"] = self.parents.astype(np.int64)
        return out


def blocks_1d(m: int, size: int) -> GroupStructure:
    w = torch.zeros(m // size, m)
    for j in range(m // size):
        w[j, j * size:(j + 1) * size] = 1.0
    return GroupStructure("blocks_1d", w)


def windows_1d(m: int, size: int, stride: int) -> GroupStructure:
    starts = range(0, m, stride)
    w = torch.zeros(len(starts), m)
    for j, s in enumerate(starts):
        w[j, [(s + k) % m for k in range(size)]] = 1.0
    return GroupStructure("windows_1d", w)


def torus_2d(side: int, pool: int, stride: int, sigma: float | None = None) -> GroupStructure:
    """Pools of pool×pool units every `stride` units on a side×side torus (wrapping at the edges)."""
    offsets = np.arange(pool) - (pool - 1) / 2
    kernel = np.ones((pool, pool))
    if sigma is not None:
        kernel = np.exp(-(offsets[:, None] ** 2 + offsets[None, :] ** 2) / (2 * sigma**2))
    starts = range(0, side, stride)
    w = np.zeros((len(starts) ** 2, side * side))
    for j, (r0, c0) in enumerate((r, c) for r in starts for c in starts):
        for dr in range(pool):
            for dc in range(pool):
                w[j, ((r0 + dr) % side) * side + (c0 + dc) % side] = kernel[dr, dc]
    return GroupStructure("torus_2d", torch.tensor(w, dtype=torch.float32), grid=(side, side))


def tree_parents(branching: int, depth: int) -> np.ndarray:
    """Complete tree in breadth-first order: node i's parent is (i − 1) // branching."""
    n = depth if branching == 1 else (branching**depth - 1) // (branching - 1)
    return np.array([-1] + [(i - 1) // branching for i in range(1, n)], dtype=np.int64)


def tree(branching: int, depth: int) -> GroupStructure:
    """One group per node: the node and all its descendants."""
    parents = tree_parents(branching, depth)
    n = len(parents)
    w = np.zeros((n, n))
    for node in range(n):  # walk up from every node, marking it in each ancestor's subtree
        a = node
        while a >= 0:
            w[a, node] = 1.0
            a = parents[a]
    return GroupStructure("tree", torch.tensor(w, dtype=torch.float32), parents=parents,
                          group_roots=np.arange(n))


def build_groups(config: GroupsConfig, units: int) -> GroupStructure:
    if isinstance(config, Blocks1D):
        return blocks_1d(units, config.size)
    if isinstance(config, Windows1D):
        return windows_1d(units, config.size, config.stride)
    if isinstance(config, Torus2D):
        return torus_2d(round(units**0.5), config.pool, config.stride, config.gaussian_sigma)
    if isinstance(config, Tree):
        return tree(config.branching, config.depth)
    raise ValueError(f"unknown group structure {config!r}")
