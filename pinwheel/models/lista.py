"""LISTA — a learned sparse encoder measured against FISTA (docs/models.md §1; Gregor & LeCun, ICML 2010).

    E(x, z) = ½‖x − W_d z‖² + λ‖z‖₁                          the energy both encoders minimise
    z* = FISTA_K(x; W_d, λ)                                   reference code, K = fista_steps
    z¹ = h_θ(W_e x);  z^{k+1} = h_θ(W_e x + S z^k)           LISTA, T steps, init from ISTA on W_d
    encoder loss: ½‖z^T − z*‖²  (target "fista")  or  E(x, z^T)  (target "energy")
    dictionary (first `dictionary_steps` steps): ½‖x − W_d z*‖², columns ‖W_d[:, i]‖ ≤ 1

Frames report, on held-out inputs, E(x, LISTA_T) next to E(x, FISTA_T) and E(x, ISTA_T) — equal
numbers of iterations, hence equal cost (one m×n and one m×m product a step) — and E(x, z*).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..configs.lista import ListaConfig
from ..inference import LISTA, energy, fista, ista, lipschitz, lipschitz_bound
from .base import PinwheelModel, numpy, unit_columns_


class ListaModel(PinwheelModel):
    panel_kinds = ("filter_grid", "reconstructions", "sparsity")

    def __init__(self, config: ListaConfig, input_shape: tuple[int, int], generator: torch.Generator):
        super().__init__(input_shape)
        self.config = config
        n, m = input_shape[0] * input_shape[1], config.units
        w_d = torch.randn(n, m, generator=generator)
        w_d /= w_d.norm(dim=0, keepdim=True)
        self.W_d = nn.Parameter(w_d)  # (n, m)
        self.lista = LISTA(w_d, config.lam, config.steps, nonneg=config.nonnegative)  # W_e (m, n), S (m, m), θ (m,)

    @torch.no_grad()
    def reference(self, x: torch.Tensor, steps: int | None = None) -> torch.Tensor:
        c = self.config
        W = self.W_d.detach()  # step 1/U, U ≥ ‖W_d‖₂² on the device (no host sync in a training step)
        return fista(x, W, c.lam, steps or c.fista_steps, nonneg=c.nonnegative, L=lipschitz_bound(W))  # (B, m)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.lista(x)

    def loss(self, x, y, step):
        c = self.config
        z_star = self.reference(x)  # (B, m), no gradient
        z = self.lista(x)  # (B, m)
        W = self.W_d.detach()
        e_lista = energy(x, W, z, c.lam).mean()
        if c.target == "fista":
            enc = 0.5 * (z - z_star).pow(2).sum(dim=1).mean()
        else:
            enc = e_lista
        recon = 0.5 * (x - z_star @ self.W_d.T).pow(2).sum(dim=1).mean()  # gradient reaches W_d only
        loss = enc + recon if step < c.dictionary_steps else enc
        return loss, {"encoder_loss": enc.detach(), "reconstruction": recon.detach(),
                      "energy_lista": e_lista.detach(), "energy_fista_ref": energy(x, W, z_star, c.lam).mean(),
                      "active_fraction": (z_star != 0).float().mean()}

    @torch.no_grad()
    def project_(self) -> None:
        unit_columns_(self.W_d)

    @torch.no_grad()
    def frame_metrics(self, dataset) -> dict[str, float]:
        """Energies on held-out inputs (the test split if the data has one, else the fixed probe batch)."""
        c = self.config
        x = dataset.x_test[:512] if dataset.x_test is not None else dataset.probe(512)[0]
        T, lam, W = c.steps, c.lam, self.W_d
        L = lipschitz(W)  # frame time: the exact step, as LISTA's initialisation had
        e = {"lista": energy(x, W, self.lista(x), lam).mean(),
             "fista": energy(x, W, fista(x, W, lam, T, nonneg=c.nonnegative, L=L), lam).mean(),
             "ista": energy(x, W, ista(x, W, lam, T, nonneg=c.nonnegative, L=L), lam).mean(),
             "optimum": energy(x, W, self.reference(x), lam).mean()}
        out = {f"heldout_energy_{k}_T" if k != "optimum" else "heldout_energy_optimum": float(v) for k, v in e.items()}
        out["lista_excess_over_optimum"] = float((e["lista"] - e["optimum"]) / e["optimum"])
        out["fista_excess_over_optimum"] = float((e["fista"] - e["optimum"]) / e["optimum"])
        return out

    def filter_bank(self) -> dict:
        h, w = self.input_shape
        return {"filters": numpy(self.W_d.T).reshape(-1, h, w), "layout": {"type": "list"}}

    def weights(self) -> dict[str, np.ndarray]:
        return {"W_d": numpy(self.W_d), "W_e": numpy(self.lista.W_e), "S": numpy(self.lista.S),
                "theta": numpy(self.lista.theta), "input_shape": np.asarray(self.input_shape)}


def build(config: ListaConfig, dataset, generator: torch.Generator) -> ListaModel:
    return ListaModel(config, dataset.shape, generator)
