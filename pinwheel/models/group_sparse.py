"""Group-sparse auto-encoder and sparse coder (docs/models.md §3; topographic form: Kavukcuoglu et al., CVPR 2009).

    form "autoencoder":    z = ReLU(W_e x + b)                            encoder, z ∈ R^m
    form "sparse_coding":  z = argmin_z ½‖x − W_d z‖² + λΩ(z)             FISTA with the prox of λΩ
                           (exact one-pass prox for blocks and trees, dual iterations for overlaps;
                           see groups.py), `inference_steps` iterations, signed codes, step 1/U with
                           U ≥ ‖W_d‖₂² computed on the device (inference.lipschitz_bound: no host sync)
    x̂ = W_d z                                        linear decoder, columns ‖W_d[:, i]‖ ≤ 1
    L(x) = ½‖x − W_d z‖² + λ Ω(z),   Ω(z) = Σ_j sqrt(Σ_{i∈P_j} w_ji z_i²)
    (λ optionally ramped up from 0 over the first steps: with random filters the penalty
    alone would switch every ReLU unit off for good)
    In the sparse-coding form z is held fixed and W_d is updated alone: alternating minimisation of
    the same energy. dictionary_update "adam": one optimizer step on the loss, then the columns
    renormalised; "online": Mairal et al. 2009 (dictionary.py) — A ← βA + zᵀz/B, B ← βB + xᵀz/B (buffers
    `stats_A` (m, m), `stats_B` (n, m)), then one exact block-coordinate sweep over the atoms on the unit
    ball; atoms start as random training patches of unit norm. Blocks of size 1 make Ω = ‖z‖₁ (plain
    sparse coding, soft thresholding in the FISTA loop).

Units that share a pool are driven to be active together, so on a 2-D torus of overlapping
pools neighbouring filters become similar and a smooth topographic map emerges.

Retinotopic windows (option `retinotopy`, auto-encoder on a G×G torus over an H×W patch): unit i = (a, b)
has a fixed window M_i(p) = exp(−|p − c_i|²_per / 2σ²) (0 beyond 3σ) centred at c_i = (a·H/G, b·W/G), |·|_per the
distance round the periodic patch, and uses the filters W_e[i] ⊙ M_i and W_d[:, i] ⊙ M_i on the patch's
periodic component (Moisan 2011: it wraps without a seam, as the torus does). All orientations must then
recur within every few pixels of the image, i.e. every (G/H)·(window width) units on the torus: that
pins the map's period, which global filters leave free (they coarsen to one period per torus).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..configs.group_sparse import Blocks1D, GroupSparseConfig, Torus2D
from ..dictionary import accumulate_, fista_codes, forgetting, restart_unused_, update_columns_
from ..groups import EPS, GroupStructure, build_groups, separable_sums
from ..inference import lipschitz_bound
from .base import PinwheelModel, random_dictionary, to_numpy, unit_columns_
from .image_ops import dihedral, dihedral_pixels, periodic_component


def retinotopic_windows(side: int, shape: tuple[int, int], sigma: float) -> torch.Tensor:
    """(side², H·W) float32: row i = a·side + b is exp(−d²/2σ²) for d ≤ 3σ, else 0, d the distance round the
    H×W torus from each pixel to the unit's centre (a·H/side, b·W/side), pixels row-major. The cut makes the
    weights beyond it get exactly no gradient, so they stay as they start (0)."""
    h, w = shape

    def ring(n: int) -> torch.Tensor:  # (side, n): squared distance along one side of n pixels, the shortest way round
        d = torch.arange(n, dtype=torch.float64)[None, :] - torch.arange(side, dtype=torch.float64)[:, None] * n / side
        return (torch.remainder(d + n / 2, n) - n / 2) ** 2

    d2 = ring(h)[:, None, :, None] + ring(w)[None, :, None, :]  # (side, side, H, W)
    return (torch.exp(-d2 / (2 * sigma**2)) * (d2 <= 9 * sigma**2)).reshape(side * side, h * w).float()


def pool_axis(side: int, pool: int, sigma: float | None) -> torch.Tensor:
    """(side, side): A[j, i] = k[(i − j) mod side] for (i − j) mod side < pool, else 0, with k the pool's 1-D profile
    (exp(−o²/2σ²) at offsets o from its middle, or 1): Torus2D's pool kernel is k ⊗ k (groups.torus_2d)."""
    offsets = torch.arange(pool, dtype=torch.float64) - (pool - 1) / 2
    k = torch.exp(-offsets**2 / (2 * sigma**2)) if sigma is not None else torch.ones(pool, dtype=torch.float64)
    lag = torch.remainder(torch.arange(side)[None, :] - torch.arange(side)[:, None], side)  # (i − j) mod side
    return torch.where(lag < pool, k[lag.clamp(max=pool - 1)], 0.0).float()


def torus_penalty(z: torch.Tensor, axis: torch.Tensor) -> torch.Tensor:
    """Ω(z) per example for one pool at every unit of a G×G torus (Torus2D with stride 1), (B, G²) → (B,):
    Σ_(r0,c0) sqrt(· + EPS) of the group sums, taken by the kernel's two 1-D factors (groups.separable_sums)."""
    return torch.sqrt(separable_sums(z, axis) + EPS).sum(dim=1)


def centred(filters: np.ndarray, shape: tuple[int, int], side: int) -> np.ndarray:
    """(side², H·W) filters → (side², H, W), each rolled round the periodic patch so that its window centre
    sits at the patch centre: the same filter on a periodic image, drawn (and measured) in one piece."""
    h, w = shape
    out = filters.reshape(-1, h, w).copy()
    for i in range(len(out)):
        a, b = divmod(i, side)
        out[i] = np.roll(out[i], (h // 2 - round(a * h / side), w // 2 - round(b * w / side)), axis=(0, 1))
    return out


class GroupSparseAE(PinwheelModel):
    panel_kinds = ("filter_grid", "group_activations", "topographic_map", "reconstructions", "sparsity")

    def __init__(self, config: GroupSparseConfig, input_shape: tuple[int, int], generator: torch.Generator):
        super().__init__(input_shape)
        self.config = config
        n, m = input_shape[0] * input_shape[1], config.units
        w_d = random_dictionary(n, m, generator)
        self.W_d = nn.Parameter(w_d)  # (n, m)
        self.sparse_coding = config.form == "sparse_coding"
        if not self.sparse_coding:
            self.W_e = nn.Parameter(w_d.T.clone())  # (m, n)
            self.b = nn.Parameter(torch.zeros(m))  # (m,)
        self.groups: GroupStructure = build_groups(config.groups, m)
        g = config.groups
        axis = None  # one pool per unit on a torus: the penalty by its separable kernel, not the dense (m, m) product
        if isinstance(g, Torus2D) and g.stride == 1:
            axis = pool_axis(self.groups.grid[0], g.pool, g.gaussian_sigma)  # (G, G)
        self.register_buffer("pool_axis", axis, persistent=False)
        self.generator = generator  # the run's: the augmentation draws from it (it is in the checkpoint)
        if config.augment:  # follows the model to its device; a function of the input shape, not in the state dict
            self.register_buffer("dihedral_pixels", dihedral_pixels(input_shape), persistent=False)  # (8, H·W)
        self.retinotopic = config.retinotopy is not None
        if self.retinotopic:
            window = retinotopic_windows(self.groups.grid[0], input_shape, config.retinotopy.sigma)  # (m, n)
            with torch.no_grad():  # start inside the windows: weights far outside get no gradient and would stay noise
                self.W_d.mul_(window.T)
                self.W_e.copy_(self.W_d.T)
                unit_columns_(self.W_d)
            # a function of the config: follows the model to its device, not in the state dict
            self.register_buffer("window", window, persistent=False)
        self.register_buffer("group_weights", self.groups.weights)
        self.plain_l1 = isinstance(config.groups, Blocks1D) and config.groups.size == 1  # Ω(z) = ‖z‖₁
        self.online = self.sparse_coding and config.dictionary_update == "online"
        if self.online:  # the sufficient statistics of online dictionary learning (checkpointed with the model)
            self.register_buffer("stats_A", torch.zeros(m, m))  # Σ β·zᵀz/B
            self.register_buffer("stats_B", torch.zeros(n, m))  # Σ β·xᵀz/B

    def _sync_groups(self) -> GroupStructure:
        self.groups.weights = self.group_weights  # follows .to(device)
        return self.groups

    def lam_at(self, step: int | None) -> float:
        c = self.config
        if step is None or not c.lam_warmup_steps:
            return c.lam
        return c.lam * min(1.0, step / c.lam_warmup_steps)

    def image(self, x: torch.Tensor) -> torch.Tensor:
        """What the units see: with retinotopic windows the patch's periodic component (it wraps as the torus does)."""
        return periodic_component(x, self.input_shape) if self.retinotopic else x

    def encoder(self) -> torch.Tensor:
        return self.W_e * self.window if self.retinotopic else self.W_e  # (m, n)

    def decoder(self) -> torch.Tensor:
        return self.W_d * self.window.T if self.retinotopic else self.W_d  # (n, m)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return z @ self.decoder().T  # (B, m) → (B, n)

    def encode(self, x: torch.Tensor, step: int | None = None) -> torch.Tensor:
        if not self.sparse_coding:
            return torch.relu(self.image(x) @ self.encoder().T + self.b)  # (B, n) → (B, m)
        groups, lam = self._sync_groups(), self.lam_at(step)
        L = lipschitz_bound(self.W_d)  # L ≥ ‖W_d‖₂², a tensor on the device (no host sync)
        if self.W_d.device.type == "cpu":
            L = float(L)  # free on the CPU, and lets the soft threshold run as one fused op
        if self.plain_l1 or lam <= 0:  # (B, n) → (B, m), FISTA on ½‖x − W_d z‖² + λ‖z‖₁
            return fista_codes(x, self.W_d.detach(), self.config.inference_steps, L, lam=lam)
        prox = lambda v, t: groups.prox(v, lam * t, overlap_iters=20)  # noqa: E731
        return fista_codes(x, self.W_d.detach(), self.config.inference_steps, L, prox=prox)  # … + λΩ(z)

    def train_step(self, x, y, step: int, optimizer) -> dict[str, torch.Tensor]:
        if not self.online:
            return super().train_step(x, y, step, optimizer)
        with torch.no_grad():  # codes, statistics, one sweep over the atoms: no gradient, no optimizer
            z = self.encode(x, step)  # (B, m)
            loss, terms = self._terms(x, z, step)
            accumulate_(self.stats_A, self.stats_B, x, z, forgetting(step, x.shape[0], self.config.online_forgetting))
            restart_unused_(self.W_d, self.stats_A, x, z)
            update_columns_(self.W_d, self.stats_A, self.stats_B)
        return {"loss": loss, **terms}

    def loss(self, x, y, step):
        if self.config.augment:  # each patch under a random symmetry of the square: no preferred axis on average
            x = dihedral(x, self.input_shape, self.generator, self.dihedral_pixels)
        return self._terms(self.image(x), self.encode(x, step), step)

    def _terms(self, x, z, step):
        x_hat = self.decode(z)  # (B, n)
        recon = 0.5 * (x - x_hat).pow(2).sum(dim=1).mean()
        groups = self._sync_groups()
        if self.plain_l1:  # group_weights = I: each group norm is sqrt(z_i² + EPS), no (B, m) × (m, m) product
            sparsity = torch.sqrt(z.pow(2) + EPS).sum(dim=1).mean()
        else:
            sparsity = (groups.penalty(z) if self.pool_axis is None else torus_penalty(z, self.pool_axis)).mean()
        warmup = min(1.0, step / self.config.lam_warmup_steps) if self.config.lam_warmup_steps else 1.0
        loss = recon + warmup * self.config.lam * sparsity
        terms = {"reconstruction": recon.detach(), "group_sparsity": sparsity.detach(),
                 "active_fraction": (z > 0).float().mean().detach()}
        if self.sparse_coding:  # signed codes: count non-zeros, and groups switched off as a whole
            terms["active_fraction"] = (z != 0).float().mean()
            terms["zero_group_fraction"] = (z == 0).float().mean() if self.plain_l1 else \
                ((z != 0).to(z.dtype) @ (groups.weights > 0).to(z.dtype).T == 0).float().mean()
        return loss, terms

    @torch.no_grad()
    def project_(self) -> None:
        if self.retinotopic:  # bound the atoms in use, ‖W_d[:, i] ⊙ M_i‖ ≤ 1
            self.W_d.div_(self.decoder().norm(dim=0, keepdim=True).clamp_min(1.0))
        else:
            unit_columns_(self.W_d)

    def filter_bank(self) -> dict:
        h, w = self.input_shape
        layout: dict = {"type": "list"}
        g = self.groups
        if g.grid is not None:
            layout = {"type": "grid", "rows": g.grid[0], "cols": g.grid[1], "wrap": g.kind == "torus_2d"}
        elif g.parents is not None:
            layout = {"type": "tree", "parents": g.parents.tolist()}
        if self.retinotopic:  # the atoms in use, each drawn in one piece round its window centre
            return {"filters": centred(to_numpy(self.decoder().T), (h, w), g.grid[0]), "layout": layout}
        return {"filters": to_numpy(self.W_d.T).reshape(-1, h, w), "layout": layout}

    def weights(self) -> dict[str, np.ndarray]:
        # the filters in use, so that z = ReLU(W_e x + b) and x̂ = W_d z hold for whoever loads the file: with
        # retinotopic windows W_e ⊙ M and W_d ⊙ Mᵀ (the window M beside them), not the raw parameters
        encoder = {} if self.sparse_coding else {"W_e": to_numpy(self.encoder()), "b": to_numpy(self.b)}
        if self.retinotopic:
            encoder["window"] = to_numpy(self.window)
        return {**encoder, "W_d": to_numpy(self.decoder()), "input_shape": np.asarray(self.input_shape),
                **self._sync_groups().as_arrays()}


def build(config: GroupSparseConfig, dataset, generator: torch.Generator) -> GroupSparseAE:
    model = GroupSparseAE(config, dataset.shape, generator)
    if model.online:  # atoms start as m random training patches of unit norm (as scikit-learn restarts them)
        idx = torch.randint(0, dataset.x.shape[0], (config.units,), generator=generator)
        patches = dataset.x[idx.to(dataset.x.device)].to(model.W_d.device, model.W_d.dtype).T  # (n, m)
        with torch.no_grad():
            model.W_d.copy_(patches / patches.norm(dim=0, keepdim=True).clamp_min(1e-12))
    return model
