"""Group-sparse auto-encoder (science.md §3; topographic form: Kavukcuoglu et al., CVPR 2009).

    z = ReLU(W_e x + b)                              encoder, z ∈ R^m
    x̂ = W_d z                                        linear decoder, columns ‖W_d[:, i]‖ ≤ 1
    L(x) = ½‖x − W_d z‖² + λ Ω(z),   Ω(z) = Σ_j sqrt(Σ_{i∈P_j} w_ji z_i²)
    (λ optionally ramped up from 0 over the first steps: with random filters the penalty
    alone would switch every ReLU unit off for good)

Units that share a pool are driven to be active together, so on a 2-D torus of overlapping
pools neighbouring filters become similar and a smooth topographic map emerges.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..configs.group_sparse import GroupSparseConfig
from ..groups import GroupStructure, build_groups
from .base import PinwheelModel, numpy, unit_columns_


class GroupSparseAE(PinwheelModel):
    panel_kinds = ("filter_grid", "group_activations", "topographic_map", "reconstructions", "sparsity")

    def __init__(self, config: GroupSparseConfig, input_shape: tuple[int, int], generator: torch.Generator):
        super().__init__(input_shape)
        self.config = config
        n, m = input_shape[0] * input_shape[1], config.units
        w_d = torch.randn(n, m, generator=generator)
        w_d /= w_d.norm(dim=0, keepdim=True)
        self.W_d = nn.Parameter(w_d)  # (n, m)
        self.W_e = nn.Parameter(w_d.T.clone())  # (m, n)
        self.b = nn.Parameter(torch.zeros(m))  # (m,)
        self.groups: GroupStructure = build_groups(config.groups, m)
        self.register_buffer("group_weights", self.groups.weights)

    def _sync_groups(self) -> GroupStructure:
        self.groups.weights = self.group_weights  # follows .to(device)
        return self.groups

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x @ self.W_e.T + self.b)  # (B, n) → (B, m)

    def loss(self, x, y, step):
        z = self.encode(x)  # (B, m)
        x_hat = z @ self.W_d.T  # (B, n)
        recon = 0.5 * (x - x_hat).pow(2).sum(dim=1).mean()
        sparsity = self._sync_groups().penalty(z).mean()
        warmup = min(1.0, step / self.config.lam_warmup_steps) if self.config.lam_warmup_steps else 1.0
        loss = recon + warmup * self.config.lam * sparsity
        return loss, {"reconstruction": recon.detach(), "group_sparsity": sparsity.detach(),
                      "active_fraction": (z > 0).float().mean().detach()}

    @torch.no_grad()
    def project_(self) -> None:
        unit_columns_(self.W_d)

    def filter_bank(self) -> dict:
        h, w = self.input_shape
        layout: dict = {"type": "list"}
        g = self.groups
        if g.grid is not None:
            layout = {"type": "grid", "rows": g.grid[0], "cols": g.grid[1]}
        elif g.parents is not None:
            layout = {"type": "tree", "parents": g.parents.tolist()}
        return {"filters": numpy(self.W_d.T).reshape(-1, h, w), "layout": layout}

    def weights(self) -> dict[str, np.ndarray]:
        return {"W_e": numpy(self.W_e), "W_d": numpy(self.W_d), "b": numpy(self.b),
                "input_shape": np.asarray(self.input_shape), **self._sync_groups().as_arrays()}


def build(config: GroupSparseConfig, dataset, generator: torch.Generator) -> GroupSparseAE:
    return GroupSparseAE(config, dataset.shape, generator)
