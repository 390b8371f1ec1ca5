"""Locally connected auto-encoder over whole images, no weight sharing (docs/models.md §5).

Units u = 1…U sit on a G×G grid over an H×W image (one every `stride` pixels, or G per side
spread evenly, several units then sharing a field); unit u sees
only its own k×k receptive field R(u) and owns its weights (nothing is shared):

    P = unfold_k,s(x)                                (B, k², U): the patch under every unit
    z_u = ReLU(⟨W_e[u], P[:, :, u]⟩ + b_u)           encoder, W_e: (U, k²)
    x̂ = fold_k,s(W_d[u] z_u)                         decoder: each unit paints its atom back at R(u)
    L(x) = ½‖x − x̂‖² + λ Σ_j sqrt(Σ_{u∈P_j} w_ju z_u²),   ‖W_d[u]‖ ≤ 1

Groups P_j are Gaussian-weighted pool×pool neighbourhoods on the unit grid (one per unit, cut
at the grid's edges: the grid covers an image, not a torus); optionally the Gaussian starts
wide and shrinks over the first steps, as a Kohonen map's neighbourhood does. Neighbours see almost the same
pixels and are pushed to be active together, so they become similar; reconstruction needs
every orientation within each receptive field, so orientation must also change — the
compromise is a continuous orientation map with pin-wheels (Gregor & LeCun 2010).
Unfold / fold and broadcast products do all units at once; there is no loop over units (the layers:
local_layers.py; the image operations: image_ops.py).

Sub-pixel retinotopy (`envelope_sigma`, `RetinotopicLayer`): unit (i, j) of the G×G grid has its own centre
c_u = (i, j)·H/G and its weights act through a fixed envelope, W[u] ⊙ E_u, E_u(p) = exp(−|p − c_u|²/2σ²) on
the k×k window nearest c_u (0 beyond `envelope_cut`·σ: a round field); no two units see the same input (shared
fields pushed neighbours apart). The raw weights start as a unit Gaussian vector times E_u (local_layers.py).
`lr_anneal` lowers the learning rate by a half cosine between two steps (set on the optimizer every step).
Nothing in a training step leaves the device: the annealed pools are rebuilt there from the grid's
axes (one 1-D kernel per side), and the augmentation's symmetries are drawn with the run's generator (saved in
the checkpoint, so a resumed run is the straight run) and applied as one gather of pixels.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from ..configs.local_filters import LocalFiltersConfig
from ..groups import EPS, separable_sums
from .base import PinwheelModel, to_numpy
from .image_ops import dihedral, dihedral_pixels, periodic_component
from .local_layers import LocallyConnected, RetinotopicLayer


def axis_kernel(axis: torch.Tensor, half: int, sigma: float | None, period: int | None = None) -> torch.Tensor:
    """(n, n): exp(−d²/2σ²) (1 when sigma is None) for units d apart along one side, 0 beyond `half`;
    with a period, d is the distance around the ring (the unit grid is a torus)."""
    d = axis[:, None] - axis[None, :]
    if period is not None:
        d = torch.remainder(d + period / 2, period) - period / 2  # shortest way round: [−n/2, n/2)
    k = torch.exp(-d**2 / (2 * sigma**2)) if sigma is not None else torch.ones_like(d)
    return k * (d.abs() <= half)


def axis_pool(axis: torch.Tensor, pool: int, sigma: float | None, wrap: bool = False) -> torch.Tensor:
    """(n, n) float32: one side's factor of the pools, `axis_kernel` with its rows normalised to sum 1."""
    k = axis_kernel(axis, pool // 2, sigma, len(axis) if wrap else None)
    return (k / k.sum(dim=1, keepdim=True)).float()


def pools_at(rows_axis: torch.Tensor, cols_axis: torch.Tensor, pool: int, sigma: float | None,
             wrap: bool = False) -> torch.Tensor:
    """One group per unit: its pool×pool neighbourhood on the grid (wrapping round a torus with `wrap`) →
    (units, units) float32, built on the axes' device (float64 positions along each side, units row-major).

    Weights are exp(−d²/2σ²) inside the window (flat when sigma is None), normalised to sum 1 per group.
    Window and Gaussian both factor over rows and columns, so the matrix is the Kronecker product of the
    two sides' kernels and its row sums the product of theirs.
    """
    rows, cols = (len(rows_axis), len(cols_axis)) if wrap else (None, None)
    kr, kc = axis_kernel(rows_axis, pool // 2, sigma, rows), axis_kernel(cols_axis, pool // 2, sigma, cols)
    w = torch.kron(kr, kc) / torch.kron(kr.sum(dim=1), kc.sum(dim=1))[:, None]  # Σ_i w_ji = 1
    return w.float()  # (groups, units)


def grid_pools(rows: int, cols: int, pool: int, sigma: float | None, wrap: bool = False) -> torch.Tensor:
    """`pools_at` on a rows×cols grid, on the CPU."""
    axis = lambda n: torch.arange(n, dtype=torch.float64)  # noqa: E731
    return pools_at(axis(rows), axis(cols), pool, sigma, wrap)


def pool_schedule(config: LocalFiltersConfig, step: int) -> tuple[int, float | None]:
    """(window side, σ) of the pools at `step`: σ shrinks linearly from anneal_sigma_from to pool_sigma."""
    if config.anneal_sigma_from is None or step >= config.anneal_steps:
        return config.pool, config.pool_sigma
    t = step / config.anneal_steps
    sigma = (1 - t) * config.anneal_sigma_from + t * config.pool_sigma
    return max(config.pool, 2 * math.ceil(2 * sigma) + 1), sigma


class LocalFiltersAE(PinwheelModel):
    panel_kinds = ("filter_grid", "topographic_map", "sparsity")

    def __init__(self, config: LocalFiltersConfig, input_shape: tuple[int, int], generator: torch.Generator):
        super().__init__(input_shape)
        self.config = config
        if config.envelope_sigma is not None:  # sub-pixel retinotopy (the config checks that grid is set)
            self.layer = RetinotopicLayer(input_shape, config.receptive_field, config.grid, config.envelope_sigma,
                                          generator, config.wrap, config.envelope_cut)
        else:
            self.layer = LocallyConnected(input_shape, config.receptive_field, config.stride, generator, config.grid,
                                          config.wrap)
        self.side = self.layer.side
        self.generator = generator  # the run's: the augmentation draws from it (it is in the checkpoint)
        self._pools = pool_schedule(config, 0)
        self.register_buffer("group_weights", grid_pools(self.side, self.side, *self._pools, config.wrap))
        self.register_buffer("axis_pool", axis_pool(torch.arange(self.side, dtype=torch.float64), *self._pools,
                                                    config.wrap), persistent=False)  # (G, G): w = A ⊗ A
        # follow the model to its device; not in the state dict (they are functions of the config)
        self.register_buffer("grid_axis", torch.arange(self.side, dtype=torch.float64), persistent=False)  # (G,)
        self.register_buffer("dihedral_pixels", dihedral_pixels(input_shape), persistent=False)  # (8, H·W)

    def lr_at(self, step: int, lr: float) -> float:
        """lr (train.lr), or with `lr_anneal` = (first, last) a half cosine from it down to lr_floor × lr between
        those steps, lr_floor × lr after."""
        c = self.config
        if c.lr_anneal is None or step <= c.lr_anneal[0]:
            return lr
        t = min(1.0, (step - c.lr_anneal[0]) / (c.lr_anneal[1] - c.lr_anneal[0]))
        return lr * (c.lr_floor + (1 - c.lr_floor) * 0.5 * (1 + math.cos(math.pi * t)))

    def train_step(self, x, y, step: int, optimizer):
        if self.config.lr_anneal is not None:  # a Python float per step: no tensor, nothing to sync
            for group in optimizer.param_groups:
                # train.lr, kept in the group: a resumed run's optimizer state brings it back with the group
                group["lr"] = self.lr_at(step, group.setdefault("initial_lr", group["lr"]))
        return super().train_step(x, y, step, optimizer)

    def image(self, x: torch.Tensor) -> torch.Tensor:
        """What the units see: with `wrap`, the image's periodic component (no seam on the torus)."""
        return periodic_component(x, self.input_shape) if self.config.wrap else x

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer.encode(self.image(x))

    def loss(self, x, y, step):
        if pool_schedule(self.config, step) != self._pools:  # annealing: wide pools first, then narrow
            self._pools = pool_schedule(self.config, step)
            self.group_weights.copy_(pools_at(self.grid_axis, self.grid_axis, *self._pools, self.config.wrap))
            self.axis_pool.copy_(axis_pool(self.grid_axis, *self._pools, self.config.wrap))
        if self.config.augment:
            x = dihedral(x, self.input_shape, self.generator, self.dihedral_pixels)
        x = self.image(x)
        z = self.layer.encode(x)  # (B, U)
        x_hat = self.layer.decode(z)  # (B, H·W)
        recon = 0.5 * (x - x_hat).pow(2).sum(dim=1).mean()
        sparsity = torch.sqrt(self.pooled_energy(z) + EPS).sum(dim=1).mean()  # Ω(z)
        c = self.config
        warmup = min(1.0, step / c.lam_warmup_steps) if c.lam_warmup_steps else 1.0
        return recon + warmup * c.lam * sparsity, {
            "reconstruction": recon.detach(), "group_sparsity": sparsity.detach(),
            "active_fraction": (z > 0).float().mean().detach()}

    def pooled_energy(self, z: torch.Tensor) -> torch.Tensor:
        """(B, U) → (B, groups): Σ_u w_ju z_u², the energy of every pool.

        The weights are a Kronecker product over the grid's two sides, w = A ⊗ A (A: `axis_pool`, rows
        normalised), so with the energies on the grid, E = z² as (B, G, G), the pools are A E Aᵀ:
        B·2G³ operations in place of B·G⁴."""
        return separable_sums(z, self.axis_pool)  # (B, G²), unit order

    @torch.no_grad()
    def project_(self) -> None:
        self.layer.project_()

    def positions(self) -> np.ndarray:
        return self.layer.positions()

    def filter_bank(self) -> dict:
        k = self.config.receptive_field
        positions = self.positions()
        # fields at their image positions when each unit has its own; with several units to a field
        # (`grid`) the tiles would cover each other there, so they go on the unit grid instead
        own_fields = len(np.unique(positions, axis=0)) == len(positions)
        return {"filters": to_numpy(self.layer.atoms()).reshape(-1, k, k),
                "layout": {"type": "positions" if own_fields else "grid", "positions": positions.tolist(),
                           "image_shape": list(self.input_shape), "rows": self.side, "cols": self.side,
                           "wrap": self.config.wrap,  # a torus over a periodic image, else edges
                           # where the pools are cut at the edges the map is not valid (topography.valid_region)
                           "border": 0 if self.config.wrap else self.config.pool // 2}}

    def weights(self) -> dict[str, np.ndarray]:
        # the filters in use on each unit's window: with sub-pixel retinotopy E_u ⊙ W[u] (the envelope beside them)
        extra = {"envelope": to_numpy(self.layer.envelope)} if isinstance(self.layer, RetinotopicLayer) else {}
        return {"W_e": to_numpy(self.layer.encoder_filters()), "W_d": to_numpy(self.layer.atoms()),
                "b": to_numpy(self.layer.b), **extra,
                "grid_shape": np.asarray([self.side, self.side], dtype=np.int64),
                "positions": self.positions().astype(np.int64),
                "receptive_field": np.asarray(self.config.receptive_field, dtype=np.int64),
                "input_shape": np.asarray(self.input_shape, dtype=np.int64),
                "group_weights": to_numpy(self.group_weights)}


def build(config: LocalFiltersConfig, dataset, generator: torch.Generator) -> LocalFiltersAE:
    return LocalFiltersAE(config, dataset.shape, generator)
