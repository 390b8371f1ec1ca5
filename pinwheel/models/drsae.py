"""DrSAE — discriminative recurrent sparse auto-encoder (docs/models.md §2; Rolfe & LeCun, ICLR 2013).

    z⁰ = 0;   z^{t+1} = ReLU(E x + S z^t − b),  t = 0…T−1         encoder, E (m×n), S (m×m), b (m,)
    x̂ = D z^T                                                      decoder, columns ‖D[:, i]‖ ≤ 1
    ŷ = softmax(C · z^T/‖z^T‖)                                      classifier, C (10×m), rows ‖C_k‖ ≤ 5
    L = ½‖x − D z^T‖² + λ‖z^T‖₁ + [step ≥ K]·α·CE(ŷ, y)             phase 1 (unsupervised) for K steps
    constraint: rows ‖E_i‖ ≤ 1.25/T (E x is added at every one of the T steps)

Initialisation from ISTA (docs/models.md §1) on a data dictionary: D's columns are m random training
inputs (plus noise of σ = 0.01 a pixel, unit norm), E = ηDᵀ, S = I − ηDᵀD, b = ηλ with η = 1/L, L = ‖D‖₂², so before
training the encoder is T steps of non-negative ISTA on ½‖x − Dz‖² + λ‖z‖₁ and every unit is a
prototype that wins on the inputs that resemble it. (A Gaussian D, as in `init="random"`, gives
E x ≈ 0 against b = λ/L on digits: almost every unit starts, and stays, silent.)

Learning rates: E's entries are ~η/√n ≈ 2e-4 on MNIST (η ≈ 0.006), S's off-diagonal ones ~η/2, D's
~1/√n ≈ 0.04; one Adam step moves every entry by ~lr, so at a common lr of 2e-3 the encoder is overwritten in a few steps and ~90 % of the
units die at once. The encoder therefore learns at lr × encoder_lr_scale, and every group's lr is
ramped up from 0 over lr_warmup_steps (Adam's first steps are its largest relative ones), then
optionally halved every lr_half_life_steps; λ can be ramped likewise (lam_warmup_steps).
Dead units (resample_dead_every = R > 0, phase 1 only): a unit not active on any training input
of the last R batches is restarted as a prototype of a poorly reconstructed input, the way the
data initialisation made it (and as k-means / online dictionary learning resample unused atoms):
D[:, i] = x/‖x‖ for the batch's inputs of largest ½‖x − D z^T‖², E_i = η D[:, i]ᵀ,
S_i· and S_·i from I − ηDᵀD, b_i = ηλ, C[:, i] = 0, and its Adam moments zeroed. All on the
device with masks (no read-back), so a step stays free of host synchronisation.
The classifier sees only the direction of z^T, so it can only be helped by units whose activity
pattern, not size, is class-specific: the categorical units.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..configs.drsae import DrSAEConfig
from ..inference import lipschitz
from .base import PinwheelModel, to_numpy, unit_columns_


def rows_max_norm_(w: torch.Tensor, max_norm: float) -> None:
    """Scale the rows of w to norm ≤ max_norm in place."""
    w.mul_(max_norm / w.norm(dim=1, keepdim=True).clamp_min(max_norm))


class DrSAE(PinwheelModel):
    panel_kinds = ("filter_grid", "drsae_units", "interaction_matrix", "reconstructions", "sparsity")

    def __init__(self, config: DrSAEConfig, input_shape: tuple[int, int], n_classes: int, generator: torch.Generator,
                 x: torch.Tensor | None = None):
        super().__init__(input_shape)
        self.config = config
        n, m = input_shape[0] * input_shape[1], config.units
        if config.init == "data" and x is not None:  # D = m random training inputs, a little noise, unit columns
            idx = torch.randint(0, x.shape[0], (m,), generator=generator)
            d = x[idx].T.detach().cpu().float() + 0.01 * torch.randn(n, m, generator=generator)
        else:
            d = torch.randn(n, m, generator=generator)
        d /= d.norm(dim=0, keepdim=True)
        eta = config.init_step if config.init_step is not None else 1.0 / lipschitz(d)
        self.eta = float(eta)  # the ISTA step of the initialisation, reused when a dead unit restarts
        self._seen: torch.Tensor | None = None  # (m,) units active on some input since the last resampling
        self.D = nn.Parameter(d)  # (n, m)
        self.E = nn.Parameter(eta * d.T)  # (m, n)
        self.S = nn.Parameter(torch.eye(m) - eta * (d.T @ d))  # (m, m)
        self.b = nn.Parameter(torch.full((m,), eta * config.lam))  # (m,)
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

    def lam_at(self, step: int) -> float:
        """λ, ramped linearly from 0 over the first lam_warmup_steps steps."""
        c = self.config
        return c.lam * min(1.0, step / c.lam_warmup_steps) if c.lam_warmup_steps else c.lam

    def supervised(self, step: int) -> bool:
        return step >= self.config.unsupervised_steps

    def loss(self, x, y, step):
        z = self.encode(x)  # (B, m)
        recon = 0.5 * (x - z @ self.D.T).pow(2).sum(dim=1).mean()
        sparsity = z.abs().sum(dim=1).mean()
        self._batch_active, self._batch_error = (z > 0).any(dim=0).detach(), (x - z @ self.D.T).pow(2).sum(1).detach()
        logits = self.logits(z)
        ce = F.cross_entropy(logits, y)
        loss = recon + self.lam_at(step) * sparsity
        if self.supervised(step):
            loss = loss + self.config.class_weight * ce
        return loss, {"reconstruction": recon.detach(), "sparsity": sparsity.detach(), "cross_entropy": ce.detach(),
                      "train_error": (logits.argmax(1) != y).float().mean().detach(),
                      "active_fraction": (z > 0).float().mean().detach(),
                      "supervised": z.new_full((), float(self.supervised(step)))}

    def make_optimizer(self, lr: float, kind: str = "adam") -> torch.optim.Optimizer:
        """Two groups: the encoder (E, S, b) at lr × encoder_lr_scale, the decoder D and classifier C at lr."""
        enc = self.config.encoder_lr_scale
        groups = [{"params": [self.E, self.S, self.b], "lr": lr * enc, "base_lr": lr * enc},
                  {"params": [self.D, self.C], "lr": lr, "base_lr": lr}]
        return torch.optim.SGD(groups, lr=lr, momentum=0.9) if kind == "sgd" else torch.optim.Adam(groups, lr=lr)

    def train_step(self, x, y, step: int, optimizer: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
        warm, half = self.config.lr_warmup_steps, self.config.lr_half_life_steps
        factor = min(1.0, (step + 1) / warm) if warm else 1.0
        if half:
            factor *= 0.5 ** (max(0, step + 1 - warm) / half)
        for group in optimizer.param_groups:
            group["lr"] = group["base_lr"] * factor
        terms = super().train_step(x, y, step, optimizer)
        every = self.config.resample_dead_every
        if every and not self.supervised(step):
            self._seen = self._batch_active if self._seen is None else self._seen | self._batch_active
            if (step + 1) % every == 0:
                self.resample_(~self._seen, x, self._batch_error, optimizer)
                self._seen = None
        return terms

    @torch.no_grad()
    def resample_(self, dead: torch.Tensor, x: torch.Tensor, error: torch.Tensor, optimizer=None) -> None:
        """Restart the units where dead (m,) is True on the worst-reconstructed inputs of x (see top)."""
        worst = error.argsort(descending=True)  # (B,)
        rank = (dead.long().cumsum(0) - 1).clamp_min(0) % len(worst)  # k-th dead unit → k-th worst input
        d_new = x[worst[rank]].T  # (n, m): a candidate column for every unit, used where dead
        d_new = d_new / d_new.norm(dim=0, keepdim=True).clamp_min(1e-6)
        col = dead[None, :]  # (1, m)
        self.D.copy_(torch.where(col, d_new, self.D))
        eta = self.eta
        self.E.copy_(torch.where(dead[:, None], eta * self.D.T, self.E))
        fresh = torch.eye(len(dead), device=dead.device, dtype=self.S.dtype) - eta * (self.D.T @ self.D)
        touched = dead[:, None] | col  # (m, m): the dead units' rows and columns
        self.S.copy_(torch.where(touched, fresh, self.S))
        self.b.copy_(torch.where(dead, eta * self.config.lam, self.b))
        self.C.copy_(torch.where(col, 0.0, self.C))
        if optimizer is not None:
            masks = {self.D: col, self.E: dead[:, None], self.S: touched, self.b: dead, self.C: col}
            for p, mask in masks.items():
                for name in ("exp_avg", "exp_avg_sq", "momentum_buffer"):
                    if torch.is_tensor(optimizer.state.get(p, {}).get(name)):
                        optimizer.state[p][name].masked_fill_(mask.expand_as(p), 0.0)
        self.project_()

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
        return {"filters": to_numpy(self.D.T).reshape(-1, h, w), "layout": {"type": "list"}}

    def weights(self) -> dict[str, np.ndarray]:
        return {"E": to_numpy(self.E), "S": to_numpy(self.S), "b": to_numpy(self.b), "D": to_numpy(self.D),
                "C": to_numpy(self.C), "input_shape": np.asarray(self.input_shape)}


def build(config: DrSAEConfig, dataset, generator: torch.Generator) -> DrSAE:
    if dataset.y is None or not dataset.n_classes:
        raise ValueError("data.kind: DrSAE needs labelled data (mnist, fashion_mnist or sklearn_digits)")
    return DrSAE(config, dataset.shape, dataset.n_classes, generator, x=dataset.x)
