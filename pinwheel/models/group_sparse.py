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
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..configs.group_sparse import Blocks1D, GroupSparseConfig
from ..dictionary import accumulate_, fista_codes, forgetting, restart_unused_, update_columns_
from ..groups import EPS, GroupStructure, build_groups
from ..inference import lipschitz_bound
from .base import PinwheelModel, random_dictionary, to_numpy, unit_columns_


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

    def encode(self, x: torch.Tensor, step: int | None = None) -> torch.Tensor:
        if not self.sparse_coding:
            return torch.relu(x @ self.W_e.T + self.b)  # (B, n) → (B, m)
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
        return self._terms(x, self.encode(x, step), step)

    def _terms(self, x, z, step):
        x_hat = z @ self.W_d.T  # (B, n)
        recon = 0.5 * (x - x_hat).pow(2).sum(dim=1).mean()
        groups = self._sync_groups()
        if self.plain_l1:  # group_weights = I: each group norm is sqrt(z_i² + EPS), no (B, m) × (m, m) product
            sparsity = torch.sqrt(z.pow(2) + EPS).sum(dim=1).mean()
        else:
            sparsity = groups.penalty(z).mean()
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
        unit_columns_(self.W_d)

    def filter_bank(self) -> dict:
        h, w = self.input_shape
        layout: dict = {"type": "list"}
        g = self.groups
        if g.grid is not None:
            layout = {"type": "grid", "rows": g.grid[0], "cols": g.grid[1], "wrap": g.kind == "torus_2d"}
        elif g.parents is not None:
            layout = {"type": "tree", "parents": g.parents.tolist()}
        return {"filters": to_numpy(self.W_d.T).reshape(-1, h, w), "layout": layout}

    def weights(self) -> dict[str, np.ndarray]:
        encoder = {} if self.sparse_coding else {"W_e": to_numpy(self.W_e), "b": to_numpy(self.b)}
        return {**encoder, "W_d": to_numpy(self.W_d), "input_shape": np.asarray(self.input_shape),
                **self._sync_groups().as_arrays()}


def build(config: GroupSparseConfig, dataset, generator: torch.Generator) -> GroupSparseAE:
    model = GroupSparseAE(config, dataset.shape, generator)
    if model.online:  # atoms start as m random training patches of unit norm (as scikit-learn restarts them)
        idx = torch.randint(0, dataset.x.shape[0], (config.units,), generator=generator)
        patches = dataset.x[idx.to(dataset.x.device)].to(model.W_d.device, model.W_d.dtype).T  # (n, m)
        with torch.no_grad():
            model.W_d.copy_(patches / patches.norm(dim=0, keepdim=True).clamp_min(1e-12))
    return model
