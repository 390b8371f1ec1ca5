"""Group structures P_j over code units and the group-sparsity penalty (docs/models.md §3).

Ω(z) = Σ_j sqrt(Σ_{i∈P_j} w_ji z_i²). A structure is stored as a dense weight matrix
w (n_groups × m), w_ji > 0 iff unit i belongs to group j; m is at most a few thousand, so a
dense matrix is both the simplest and the fastest form (one matmul per batch).

Proximal operators, prox_{τΩ}(u) = argmin_p ½‖p − u‖² + τΩ(p) (what sparse coding by proximal
gradient needs; weights uniform inside a group, w_ji = c_j, make the group's threshold τ·sqrt(c_j)):
- one group / disjoint blocks: u_g ← u_g·max(0, 1 − τ_g/‖u_g‖₂)                    (block_prox)
- tree (groups nested or disjoint): apply the block rule once per group, children before
  parents, leaves to root — exact (Jenatton et al. 2011, Prop. 2.1)                     (tree_prox)
- any overlap, any weights: the dual problem, projected FISTA on
      min_{‖v_j‖≤τ} ½‖u − Σ_j D_j v_j‖²,   D_j = diag(sqrt(w_j)),   p = u − Σ_j D_j v_j
  whose dual gradient is Lipschitz with constant max_i Σ_j w_ji; the duality gap certifies
  the optimum                                                                      (overlap_prox)

No host synchronisation in a prox: τ may be a 0-dim tensor (FISTA's step 1/L lives on the device),
the levels of a laminar family are found once (NumPy, at construction) and kept per device and
dtype as the levels' member matrices and sqrt(c_j) (`level_blocks`), built on first use there.
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
    _blocks: dict = field(default_factory=dict, repr=False, compare=False)  # (device, dtype) → level_blocks

    def __post_init__(self) -> None:
        if "levels" not in self.meta and self.weights.device.type == "cpu":  # once, while the weights are here
            self.meta["levels"] = nested_levels(self.weights.detach().numpy())

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

    def level_blocks(self, device, dtype) -> list[tuple[torch.Tensor, torch.Tensor]] | None:
        """Per level of a laminar family (innermost first): (members (G_l, m) 0/1, sqrt(c_j) (G_l,)) on
        `device`; None if the family is not laminar. Built once per device and dtype."""
        levels = self.meta.get("levels")
        if levels is None:  # weights that never were on the CPU: one read-back, once
            levels = self.meta["levels"] = nested_levels(self.weights.detach().cpu().numpy())
        if levels is False:
            return None
        key = (torch.device(device), dtype)
        if key not in self._blocks:
            w = self.weights.detach()
            blocks = []
            for idx in levels:
                wl = w[torch.as_tensor(idx, device=w.device)]
                blocks.append(((wl > 0).to(device=device, dtype=dtype), wl.to(device=device, dtype=dtype).max(dim=1).values.sqrt()))
            self._blocks[key] = blocks
        return self._blocks[key]

    def prox(self, u: torch.Tensor, tau: float | torch.Tensor, *, nonneg: bool = False,
             overlap_iters: int = 100) -> torch.Tensor:
        """prox_{τΩ}(u) (B, m) → (B, m), plus the constraint z ≥ 0 if nonneg (Ω is absolute and monotone,
        so that prox is prox_{τΩ}(ReLU(u))). τ a float (≤ 0: identity) or a 0-dim tensor ≥ 0 (no sync)."""
        if nonneg:
            u = torch.relu(u)
        if not isinstance(tau, torch.Tensor) and tau <= 0:
            return u
        blocks = self.level_blocks(u.device, u.dtype)
        if blocks is not None:  # laminar family with uniform weights inside each group: exact one pass
            return laminar_prox(u, blocks, tau)
        return overlap_prox(u, self.weights, tau, iters=overlap_iters)

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


def separable_sums(z: torch.Tensor, axis: torch.Tensor) -> torch.Tensor:
    """Σ_u w_ju z_u² for every group j of a G×G grid whose weights factor over its two sides, w = A ⊗ A
    (one pool per unit, A (G, G) one side's profile): with the energies on the grid, E = z² as (B, G, G), the
    sums are A E Aᵀ, B·2G³ operations in place of the dense product's B·G⁴. (B, G²) → (B, G²), row-major."""
    g = axis.shape[0]
    return (axis @ z.pow(2).view(-1, g, g) @ axis.T).flatten(1)


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
    return GroupStructure("torus_2d", torch.tensor(w, dtype=torch.float32), grid=(side, side),
                          meta={"rule": {"type": "torus_2d", "side": side, "pool": pool, "stride": stride}})


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


# ---- proximal operators -------------------------------------------------------------------------

def group_thresholds(weights: torch.Tensor, tau: float, dtype=None) -> torch.Tensor:
    """τ·sqrt(c_j) for groups whose weights are all c_j: (G, m) → (G,)."""
    return tau * weights.to(dtype or weights.dtype).max(dim=1).values.sqrt()


def block_prox(u: torch.Tensor, weights: torch.Tensor, tau: float) -> torch.Tensor:
    """Exact prox of τΣ_j‖u_{P_j}‖ for *disjoint* groups (G, m), weights uniform per group."""
    return _block_rule(u, (weights > 0).to(u.dtype), group_thresholds(weights, tau, u.dtype))


def _block_rule(u: torch.Tensor, members: torch.Tensor, thresholds: torch.Tensor) -> torch.Tensor:
    """u_g ← u_g·max(0, 1 − t_g/‖u_g‖) for disjoint groups: members (G, m) 0/1, thresholds (G,)."""
    norms = (u.pow(2) @ members.T).sqrt()  # (B, G)
    factor = torch.relu(1 - thresholds / norms.clamp_min(1e-30))  # (B, G)
    return u * (1 - (1 - factor) @ members)  # a unit outside every group keeps factor 1


def nested_levels(weights: np.ndarray) -> list[np.ndarray] | bool:
    """Groups as levels of disjoint groups, innermost first, if the family is laminar (every two groups nested
    or disjoint) with uniform weights inside each group; False otherwise (then the prox needs `overlap_prox`)."""
    member = weights > 0
    for w, m in zip(weights, member):
        if m.any() and np.ptp(w[m]) > 1e-12 * max(1.0, w[m].max()):
            return False
    sizes = member.sum(axis=1)
    order = np.argsort(sizes, kind="stable")
    level = np.zeros(len(weights), dtype=np.int64)
    for a_pos, a in enumerate(order):
        for b in order[:a_pos]:
            inter = np.logical_and(member[a], member[b]).sum()
            if inter == 0:
                continue
            if inter != sizes[b] or sizes[b] == sizes[a]:  # partial overlap, or two equal groups
                return False
            level[a] = max(level[a], level[b] + 1)
    return [np.flatnonzero(level == k) for k in range(level.max() + 1 if len(level) else 0)]


def tree_prox(u: torch.Tensor, weights: torch.Tensor, tau: float, levels: list[np.ndarray]) -> torch.Tensor:
    """Exact prox for nested/disjoint groups: the block rule once per group, children before parents."""
    for idx in levels:  # innermost (leaves) first; groups inside a level are disjoint
        u = block_prox(u, weights[torch.as_tensor(idx, device=weights.device)], tau)
    return u


def laminar_prox(u: torch.Tensor, blocks: list[tuple[torch.Tensor, torch.Tensor]], tau) -> torch.Tensor:
    """`tree_prox` with the levels prepared on u's device (GroupStructure.level_blocks): no index copies."""
    for members, sqrt_c in blocks:  # innermost (leaves) first
        u = _block_rule(u, members, tau * sqrt_c)
    return u


def overlap_prox(u: torch.Tensor, weights: torch.Tensor, tau: float, iters: int = 100,
                 return_dual: bool = False):
    """prox_{τΩ}(u) for any groups and weights, by accelerated projected gradient on the dual (see top)."""
    sw = weights.to(u.dtype).sqrt()  # (G, m): the diagonals of D_j
    L = weights.sum(dim=0).max().clamp_min(1e-12).to(u.dtype)  # ‖Σ_j D_j²‖, a 0-dim tensor (no sync)
    v = torch.zeros(u.shape[0], *weights.shape, dtype=u.dtype, device=u.device)  # (B, G, m)
    y, t = v, 1.0
    for _ in range(iters):
        p = u - (y * sw).sum(dim=1)  # (B, m): the primal point of y
        step = y + sw * p[:, None, :] / L  # ascent on Σ_j v_jᵀD_j p  ⇔  descent on the dual
        norms = step.pow(2).sum(dim=2, keepdim=True).sqrt()  # (B, G, 1)
        v_next = step * (tau / norms.clamp_min(tau)).clamp(max=1.0)  # project onto ‖v_j‖ ≤ τ
        t_next = (1.0 + (1.0 + 4.0 * t * t) ** 0.5) / 2.0
        y = v_next + ((t - 1.0) / t_next) * (v_next - v)
        v, t = v_next, t_next
    p = u - (v * sw).sum(dim=1)
    return (p, v) if return_dual else p


def prox_objective(p: torch.Tensor, u: torch.Tensor, weights: torch.Tensor, tau: float) -> torch.Tensor:
    """½‖p − u‖² + τΩ(p) per example, with the exact norm (no EPS): (B,)."""
    return 0.5 * (p - u).pow(2).sum(dim=1) + tau * (p.pow(2) @ weights.to(p.dtype).T).sqrt().sum(dim=1)


def duality_gap(u: torch.Tensor, weights: torch.Tensor, tau: float, v: torch.Tensor) -> torch.Tensor:
    """P(u − Σ D_j v_j) − D(v) ≥ 0 for feasible v (‖v_j‖ ≤ τ); zero exactly at the optimum."""
    sw = weights.to(u.dtype).sqrt()
    p = u - (v * sw).sum(dim=1)
    dual = 0.5 * u.pow(2).sum(dim=1) - 0.5 * p.pow(2).sum(dim=1)
    return prox_objective(p, u, weights, tau) - dual

