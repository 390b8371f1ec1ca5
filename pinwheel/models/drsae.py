"""DrSAE — discriminative recurrent sparse auto-encoder (science.md §2; Rolfe & LeCun, ICLR 2013).

    z⁰ = 0;   z^{t+1} = ReLU(E x + S z^t − b),  t = 0…T−1         encoder, E (m×n), S (m×m), b (m,)
    x̂ = D z^T                                                      decoder, columns ‖D[:, i]‖ ≤ 1
    ŷ = softmax(C · z^T/‖z^T‖)                                      classifier, C (10×m), rows ‖C_k‖ ≤ 5
    L = ½‖x − D z^T‖² + λ‖z^T‖₁ + [step ≥ K]·α·CE(ŷ, y)             phase 1 (unsupervised) for K steps
    constraint: rows ‖E_i‖ ≤ 1.25/T (E x is added at every one of the T steps)

Initialisation from ISTA on D (science.md §1): E = Dᵀ/L, S = I − DᵀD/L, b = λ/L, so before
training the encoder is T steps of non-negative ISTA on ½‖x − Dz‖² + λ‖z‖₁ (with E then shrunk
to the row bound). The classifier sees only the direction of z^T, so it can only be helped by
units whose activity pattern, not size, is class-specific: the categorical units.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..configs.drsae import DrSAEConfig
from ..inference import lipschitz
from .base import PinwheelModel, numpy, unit_columns_


def rows_max_norm_(w: torch.Tensor, max_norm: float) -> None:
    """Scale the rows of w to norm ≤ max_norm in place."""
    w.mul_(max_norm / w.norm(dim=1, keepdim=True).clamp_min(max_norm))


class DrSAE(PinwheelModel):
    panel_kinds = ("filter_grid", "drsae_units", "interaction_matrix", "reconstructions", "sparsity")

    def __init__(self, config: DrSAEConfig, input_shape: tuple[int, int], n_classes: int, generator: torch.Generator):
        super().__init__(input_shape)
        self.config = config
        n, m = input_shape[0] * input_shape[1], config.units
        d = torch.randn(n, m, generator=generator)
        d /= d.norm(dim=0, keepdim=True)
        L = lipschitz(d)
        self.D = nn.Parameter(d)  # (n, m)
        self.E = nn.Parameter(d.T / L)  # (m, n)
        self.S = nn.Parameter(torch.eye(m) - d.T @ d / L)  # (m, m)
        self.b = nn.Parameter(torch.full((m,), config.lam / L))  # (m,)
        self.C = nn.Parameter(0.01 * torch.randn(n_classes, m, generator=generator))  # (classes, m)
        self.project_()

    def trajectory(self, x: torch.Tensor) -> list[torch.Tensor]:
        """[z¹, …, z^T], each (B, m)."""
        drive = x @ self.E.T - self.b  # (B, m): E x − b, the same at every step
        z = torch.relu(drive)  # z¹ (z⁰ = 0)
        out = [z]
        for _ in range(self.config.steps - 1):
            z = torch.relu(drive + z @ self.S.T)  # (B, m)
            out.append(z)
        return out

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.trajectory(x)[-1]

    def logits(self, z: torch.Tensor) -> torch.Tensor:
        return (z / z.norm(dim=1, keepdim=True).clamp_min(1e-6)) @ self.C.T  # (B, classes)

    def supervised(self, step: int) -> bool:
        return step >= self.config.unsupervised_steps

    def loss(self, x, y, step):
        z = self.encode(x)  # (B, m)
        recon = 0.5 * (x - z @ self.D.T).pow(2).sum(dim=1).mean()
        sparsity = z.abs().sum(dim=1).mean()
        logits = self.logits(z)
        ce = F.cross_entropy(logits, y)
        loss = recon + self.config.lam * sparsity
        if self.supervised(step):
            loss = loss + self.config.class_weight * ce
        return loss, {"reconstruction": recon.detach(), "sparsity": sparsity.detach(), "cross_entropy": ce.detach(),
                      "train_error": (logits.argmax(1) != y).float().mean().detach(),
                      "active_fraction": (z > 0).float().mean().detach(),
                      "supervised": torch.tensor(float(self.supervised(step)))}

    @torch.no_grad()
    def project_(self) -> None:
        unit_columns_(self.D)
        rows_max_norm_(self.E, self.config.E_row_max / self.config.steps)
        rows_max_norm_(self.C, self.config.C_row_max)

    @torch.no_grad()
    def predict(self, x: torch.Tensor, chunk: int = 1024) -> torch.Tensor:
        return torch.cat([self.logits(self.encode(x[i:i + chunk])).argmax(1) for i in range(0, len(x), chunk)])

    @torch.no_grad()
    def frame_metrics(self, dataset) -> dict[str, float]:
        if dataset.x_test is None:
            return {}
        return {"test_error": float((self.predict(dataset.x_test) != dataset.y_test).float().mean())}

    def filter_bank(self) -> dict:
        h, w = self.input_shape
        return {"filters": numpy(self.D.T).reshape(-1, h, w), "layout": {"type": "list"}}

    def weights(self) -> dict[str, np.ndarray]:
        return {"E": numpy(self.E), "S": numpy(self.S), "b": numpy(self.b), "D": numpy(self.D), "C": numpy(self.C),
                "input_shape": np.asarray(self.input_shape)}


def build(config: DrSAEConfig, dataset, generator: torch.Generator) -> DrSAE:
    if dataset.y is None or not dataset.n_classes:
        raise ValueError("data.kind: DrSAE needs labelled data (mnist, fashion_mnist or sklearn_digits)")
    return DrSAE(config, dataset.shape, dataset.n_classes, generator)
