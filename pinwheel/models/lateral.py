"""Structured sparse coding by lateral inhibition (docs/models.md §6; Gregor, Szlam & LeCun, NIPS 2011).

    E(x, z) = ½‖x − W_d z‖² + λ‖z‖₁ + |z|ᵀ S |z|,   S = Sᵀ ≥ 0, diag S = 0, ‖W_d[:, i]‖ = 1

Inference (majorise-minimise proximal gradient): unit i's threshold grows with the activity of
the units that inhibit it,

    u   = z − (1/L) W_dᵀ(W_d z − x)
    z_i ← sign(u_i) · max(|u_i| − (λ + 2 (S|z|)_i) / L,  0),     L = ‖W_d‖₂² + 2 λ_max(S)

whose fixed points are the stationary points of E. The 2λ_max(S) matters: with a = |z|,
a'ᵀSa' ≤ aᵀSa + 2(Sa)ᵀ(a' − a) + λ_max(S)‖a' − a‖² and ‖|z'| − |z|‖ ≤ ‖z' − z‖, so with this L
every step minimises a majoriser of E and E never increases. With L = ‖W_d‖₂² alone (as before)
a strong S makes the iteration flip between "every unit on" and "every unit off" for ever (period
2), and an even number of steps ended in the "off" half: one unit per patch, no co-activity across
branches, so the inhibition term and the ascent on S were exactly zero. S ≥ 0 with every row
summing to r has λ_max(S) = r (Perron), bounded on the device by S's largest row sum. Steps are
accelerated (FISTA momentum) with a per-example monotone restart: a step that would raise an
example's energy is dropped and its momentum reset (Li & Lin 2015's monotone APG), so E still
never increases. Learning, per batch: z* = infer(x);
descent on ½‖x − W_d z*‖² for W_d (columns renormalised); if S is learned, projected *ascent*

    S ← Π(S + η · mean_b |z*||z*|ᵀ),   Π onto {S = Sᵀ, 0 ≤ S ≤ β, S = 0 off the mask, S 1 = r}

so co-active pairs inhibit each other more and others less. With a row-sum schedule (config
`row_sum_start`, `row_sum_steps`) r moves linearly from row_sum_start to row_sum over the first
row_sum_steps steps: strong inhibition early, while the branches form, relaxed later so that more
units may code a patch together. Π is computed by Dykstra's
alternating projections between the box and the row-sum plane (both inside the space of
symmetric masked matrices, where the row-sum projection has a closed form). In a training step
the projection runs on S's device in float64 (`SProjection.tensor`): the same iterations, stopped
at the same tolerance on the CPU; elsewhere a fixed number of them, each iteration after
convergence frozen on the device (no host sync), so the result is the same whenever it
converges within that number. The step size 1/U of inference uses U ≥ ‖W_d‖₂² computed on the
device (inference.lipschitz_bound) instead of an SVD.

Masks: tree — S_ij = 0 when i, j lie on one branch (ancestor/descendant), so each unit
inhibits everything but its own branch; 2-D grid — S_ij = 0 between grid neighbours, so
neighbours may fire together and a topographic map forms.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..configs.lateral import GridMask, LateralConfig, TreeMask, grid_distances
from ..groups import tree, tree_parents
from ..inference import lipschitz_bound
from .base import PinwheelModel, random_dictionary, to_numpy


def tree_mask(branching: int, depth: int) -> np.ndarray:
    """(m, m) bool, True where S may be non-zero: i ≠ j and neither is an ancestor of the other."""
    subtree = tree(branching, depth).weights.numpy() > 0  # [a, i]: i is in the subtree rooted at a
    return ~(subtree | subtree.T)


def grid_mask(side: int, radius: float, wrap: bool, outer_radius: float | None = None) -> np.ndarray:
    """(m, m) bool on a side×side grid, True where units are farther apart than `radius` (and no farther
    than `outer_radius` when it is set: an annulus of inhibition)."""
    d = np.stack([grid_distances(side, u, wrap) for u in range(side * side)])
    return (d > radius) & (d <= (np.inf if outer_radius is None else outer_radius))


class SProjection:
    """Euclidean projection onto {S = Sᵀ, 0 ≤ S ≤ β, S = 0 outside mask (incl. diagonal), S 1 = r}."""

    def __init__(self, mask: np.ndarray, beta: float, row_sum: float):
        self.mask = mask & ~np.eye(len(mask), dtype=bool)
        self.beta = beta
        deg = self.mask.sum(axis=1)
        self.active = deg > 0
        self.row_sum = row_sum
        self.target = np.where(self.active, row_sum, 0.0)  # r_i (a unit no one may inhibit keeps 0)
        a = self.active
        q = np.diag(deg[a]).astype(np.float64) + self.mask[np.ix_(a, a)]  # (D + M) on active rows
        self.q_inv = np.linalg.pinv(q)
        self._consts: dict = {}  # device → (mask, 1 on the active rows, q_inv on every row (zero off the active ones))

    def _box(self, s: np.ndarray) -> np.ndarray:
        return np.clip(s, 0.0, self.beta) * self.mask

    def _rows(self, s: np.ndarray) -> np.ndarray:
        u = np.zeros(len(s))
        u[self.active] = self.q_inv @ (s.sum(axis=1) - self.target)[self.active]
        return s - (u[:, None] + u[None, :]) * self.mask

    def set_row_sum(self, row_sum: float) -> None:
        """Project onto rows summing to `row_sum` from now on (a row-sum schedule)."""
        if row_sum != self.row_sum:
            self.row_sum = row_sum
            self.target = np.where(self.active, row_sum, 0.0)  # on a device: 1_active · row_sum (`tensor`)

    def __call__(self, s: np.ndarray, iters: int = 2000, tol: float = 1e-7) -> np.ndarray:
        x = 0.5 * (s + s.T) * self.mask  # onto the subspace; both sets lie in it
        p, q = np.zeros_like(x), np.zeros_like(x)
        for _ in range(iters):  # Dykstra
            y = self._box(x + p)
            p = x + p - y
            x_new = self._rows(y + q)
            q = y + q - x_new
            done = np.abs(y.sum(axis=1) - self.target).max() < tol and np.abs(x_new - x).max() < tol
            x = x_new
            if done:
                break
        return y

    def _on(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if device not in self._consts:  # built once per device
            q_full = np.zeros((len(self.mask),) * 2)
            q_full[np.ix_(self.active, self.active)] = self.q_inv
            self._consts[device] = tuple(torch.as_tensor(np.asarray(a, dtype=np.float64)).to(device)
                                         for a in (self.mask, self.active, q_full))
        return self._consts[device]

    def tensor(self, s: torch.Tensor, iters: int = 2000, tol: float = 1e-7, device_iters: int = 16,
               adaptive: bool | None = None) -> torch.Tensor:
        """`__call__` on a float64 tensor, on its device. On the CPU it stops as `__call__` does; elsewhere
        (or adaptive=False) it runs `device_iters` iterations, each one after convergence a no-op, with no
        host synchronisation."""
        mask, active, q_full = self._on(s.device)
        target = active * self.row_sum  # a Python scalar: a row-sum schedule moves no data to the device
        adaptive = s.device.type == "cpu" if adaptive is None else adaptive

        def box(t):
            return t.clamp(0.0, self.beta) * mask

        def rows(t):
            u = q_full @ (t.sum(dim=1) - target)  # zero on the inactive rows
            return t - (u[:, None] + u[None, :]) * mask

        x = 0.5 * (s + s.T) * mask
        p, q = torch.zeros_like(x), torch.zeros_like(x)
        done, out = torch.zeros((), dtype=torch.bool, device=s.device), x
        for _ in range(iters if adaptive else device_iters):  # Dykstra
            y = box(x + p)
            p_new = x + p - y
            x_new = rows(y + q)
            q_new = y + q - x_new
            conv = ((y.sum(dim=1) - target).abs().max() < tol) & ((x_new - x).abs().max() < tol)
            if adaptive:
                x, p, q = x_new, p_new, q_new
                if conv:  # a CPU tensor: reading it is free
                    return y
                continue
            out = torch.where(done, out, y)
            x, p, q = (torch.where(done, old, new) for old, new in ((x, x_new), (p, p_new), (q, q_new)))
            done = done | conv
        return y if adaptive else out


class LateralInhibition(PinwheelModel):
    panel_kinds = ("filter_grid", "tree_inhibition", "interaction_matrix", "topographic_map", "reconstructions", "sparsity")

    def __init__(self, config: LateralConfig, input_shape: tuple[int, int], generator: torch.Generator):
        super().__init__(input_shape)
        self.config = config
        n, m = input_shape[0] * input_shape[1], config.units
        self.W_d = nn.Parameter(random_dictionary(n, m, generator))  # (n, m)
        mk = config.mask
        self.parents = tree_parents(mk.branching, mk.depth) if isinstance(mk, TreeMask) else None
        self.grid = (round(m**0.5),) * 2 if isinstance(mk, GridMask) else None
        mask = tree_mask(mk.branching, mk.depth) if isinstance(mk, TreeMask) else grid_mask(self.grid[0], mk.radius, mk.wrap, mk.outer_radius)
        self.projection = SProjection(mask, config.beta, config.row_sum_at(0))
        s0 = self.projection(self.projection.mask * config.beta / 2)
        self.register_buffer("S", torch.tensor(s0, dtype=torch.float32))  # (m, m)
        self.register_buffer("mask", torch.tensor(self.projection.mask))

    @torch.no_grad()
    def infer(self, x: torch.Tensor, steps: int | None = None) -> torch.Tensor:
        """z* ≈ argmin_z E(x, z) by accelerated majorise-minimise steps (module docstring): (B, n) → (B, m)."""
        c = self.config
        w, s = self.W_d.detach(), self.S
        lip = lipschitz_bound(w) + 2 * s.sum(dim=1).max()  # ≥ ‖W_d‖₂² + 2λ_max(S), a 0-dim tensor on w's device
        z = x.new_zeros(x.shape[0], w.shape[1])  # (B, m), the monotone sequence
        y, t = z, x.new_ones(x.shape[0], 1)  # extrapolated point and momentum counter, per example
        e_z = self._energy(x, z, w)  # (B,)
        for _ in range(steps or c.inference_steps):
            u = y - ((y @ w.T - x) @ w) / lip  # (B, m)
            thr = (c.lam + 2 * y.abs() @ s) / lip  # (B, m): λ + 2(S|y|)_i, S symmetric
            z_new = torch.relu(u - thr) if c.nonnegative else torch.sign(u) * torch.relu(u.abs() - thr)
            e_new = self._energy(x, z_new, w)
            worse = (e_new > e_z)[:, None]  # (B, 1): drop the step, restart from z without momentum
            t_new = torch.where(worse, torch.ones_like(t), 0.5 * (1 + torch.sqrt(1 + 4 * t * t)))
            y = torch.where(worse, z, z_new + ((t - 1) / t_new) * (z_new - z))
            z, e_z, t = torch.where(worse, z, z_new), torch.where(worse[:, 0], e_z, e_new), t_new
        return z

    def _energy(self, x: torch.Tensor, z: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        a = z.abs()
        return 0.5 * (x - z @ w.T).pow(2).sum(1) + self.config.lam * a.sum(1) + ((a @ self.S) * a).sum(1)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.infer(x)

    def energy(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """E(x, z) per example: (B,)."""
        a = z.abs()
        return (0.5 * (x - z @ self.W_d.T).pow(2).sum(1) + self.config.lam * a.sum(1)
                + ((a @ self.S) * a).sum(1))

    def train_step(self, x, y, step, optimizer):
        z = self.infer(x)  # (B, m), fixed during the update
        recon = 0.5 * (x - z @ self.W_d.T).pow(2).sum(dim=1).mean()
        optimizer.zero_grad(set_to_none=True)
        recon.backward()
        optimizer.step()
        self.project_()
        with torch.no_grad():
            a = z.abs()
            inhibition = ((a @ self.S) * a).sum(1).mean()
            r_old, r_new = self.projection.row_sum, self.config.row_sum_at(step + 1)
            self.projection.set_row_sum(r_new)  # the row-sum schedule, if any
            if self.config.learn_S:
                co = (a.T @ a / len(a)).double()  # mean |z||z|ᵀ
                self.S.copy_(self.projection.tensor(self.S.double() + self.config.s_lr * co))
            elif r_new != r_old:  # S not learned: only moved onto the new row sum
                self.S.copy_(self.projection.tensor(self.S.double()))
        l1 = a.sum(1).mean()
        return {"loss": (recon + self.config.lam * l1 + inhibition).detach(), "reconstruction": recon.detach(),
                "l1": l1, "inhibition": inhibition, "active_fraction": (z != 0).float().mean()}

    @torch.no_grad()
    def project_(self) -> None:
        self.W_d.div_(self.W_d.norm(dim=0, keepdim=True).clamp_min(1e-8))  # unit-norm atoms

    def filter_bank(self) -> dict:
        h, w = self.input_shape
        if self.parents is not None:
            layout = {"type": "tree", "parents": self.parents.tolist()}
        else:
            layout = {"type": "grid", "rows": self.grid[0], "cols": self.grid[1],
                      "wrap": bool(getattr(self.config.mask, "wrap", False))}
        return {"filters": to_numpy(self.W_d.T).reshape(-1, h, w), "layout": layout}

    def weights(self) -> dict[str, np.ndarray]:
        out = {"W_d": to_numpy(self.W_d), "S": to_numpy(self.S), "S_mask": self.mask.cpu().numpy(),
               "input_shape": np.asarray(self.input_shape, dtype=np.int64)}
        if self.parents is not None:
            out["tree_parents"] = self.parents.astype(np.int64)
        else:
            out["grid_shape"] = np.asarray(self.grid, dtype=np.int64)
        return out


def build(config: LateralConfig, dataset, generator: torch.Generator) -> LateralInhibition:
    return LateralInhibition(config, dataset.shape, generator)
