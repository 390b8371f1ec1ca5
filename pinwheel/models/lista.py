"""LISTA — a learned sparse encoder measured against FISTA (docs/models.md §1; Gregor & LeCun, ICML 2010).

    E(x, z) = ½‖x − W_d z‖² + λ‖z‖₁                          the energy both encoders minimise
    z* = FISTA_K(x; W_d, λ)                                   reference code, K = fista_steps
    z¹ = h_θ(W_e x);  z^{k+1} = h_θ(W_e x + S z^k)           LISTA, T steps, init from ISTA on W_d
    variants (config.variant; inference.py has the equations): untied LISTA (W_e^k, S^k, θ^k per step),
    LISTA-CP (z^{k+1} = h_θk(z^k + W_kᵀ(x − W_d z^k)), Chen et al. 2018), ALISTA (analytic W, learned γ_k, θ_k)
    encoder loss: ½‖z^T − z*‖²  (target "fista")  or  E(x, z^T)  (target "energy")
    dictionary (first `dictionary_steps` steps): ½‖x − W_d z*‖², columns ‖W_d[:, i]‖ ≤ 1

Frames report, on held-out inputs (the data's x_test: natural patches from the photographs' held-out
regions), E(x, LISTA_T) next to E(x, FISTA_T) and E(x, ISTA_T) — equal numbers of iterations, hence
equal cost (one m×n and one m×m product a step) — and E(x, z*); the relative code error
‖z − z*‖²/‖z*‖² of LISTA_T and FISTA_T; and how many FISTA iterations reach LISTA_T's energy gap and
code error (the iterations ratio = that count / T).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..configs.lista import ListaConfig
from ..inference import (LISTA, CoupledLISTA, accuracy_gap, energy, fista, ista, iterations_to_accuracy,
                         lipschitz, lipschitz_bound)
from .base import PinwheelModel, random_dictionary, to_numpy, unit_columns_


class ListaModel(PinwheelModel):
    panel_kinds = ("filter_grid", "reconstructions", "sparsity")

    def __init__(self, config: ListaConfig, input_shape: tuple[int, int], generator: torch.Generator):
        super().__init__(input_shape)
        self.config = config
        n, m = input_shape[0] * input_shape[1], config.units
        w_d = random_dictionary(n, m, generator)
        self.W_d = nn.Parameter(w_d)  # (n, m)
        self.lista = make_encoder(config, w_d)

    @torch.no_grad()
    def reference(self, x: torch.Tensor, steps: int | None = None) -> torch.Tensor:
        c = self.config
        W = self.W_d.detach()  # step 1/U, U ≥ ‖W_d‖₂² on the device (no host sync in a training step)
        return fista(x, W, c.lam, steps or c.fista_steps, nonneg=c.nonnegative, L=lipschitz_bound(W))  # (B, m)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.lista(x)

    def loss(self, x, y, step):
        c = self.config
        if step < c.dictionary_steps and isinstance(self.lista, CoupledLISTA):
            self.lista.set_dictionary(self.W_d)  # its layers read W_d (ALISTA: W from it) while W_d moves
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
        """Energies, code errors and FISTA iterations-to-accuracy on held-out inputs (the data's x_test)."""
        if dataset.x_test is None:
            return {}  # every built-in data kind has one; nothing measured on training data is called held-out
        c = self.config
        x = dataset.x_test[:512]
        T, lam, W = c.steps, c.lam, self.W_d
        L = lipschitz(W)  # frame time: the exact step, as LISTA's initialisation had
        z_star = self.reference(x)
        z = {"lista": self.lista(x), "fista": fista(x, W, lam, T, nonneg=c.nonnegative, L=L),
             "ista": ista(x, W, lam, T, nonneg=c.nonnegative, L=L)}
        e = {k: energy(x, W, v, lam).mean() for k, v in z.items()}
        e["optimum"] = energy(x, W, z_star, lam).mean()
        out = {f"heldout_energy_{k}_T" if k != "optimum" else "heldout_energy_optimum": float(v) for k, v in e.items()}
        out["lista_excess_over_optimum"] = float((e["lista"] - e["optimum"]) / e["optimum"])
        out["fista_excess_over_optimum"] = float((e["fista"] - e["optimum"]) / e["optimum"])
        for name in ("lista", "fista"):
            out[f"heldout_code_error_{name}_T"] = accuracy_gap(x, W, lam, z[name], z_star, "code")
        for measure in ("energy", "code"):  # FISTA iterations to LISTA_T's accuracy, capped at the reference's
            gap = accuracy_gap(x, W, lam, z["lista"], z_star, measure)
            k = iterations_to_accuracy(x, W, lam, gap, z_star, measure=measure, max_steps=c.fista_steps,
                                       nonneg=c.nonnegative, L=L)
            if k is not None:
                out[f"heldout_fista_iterations_{measure}"] = float(k)
                out[f"heldout_iteration_ratio_{measure}"] = k / T
        return out

    def filter_bank(self) -> dict:
        h, w = self.input_shape
        return {"filters": to_numpy(self.W_d.T).reshape(-1, h, w), "layout": {"type": "list"}}

    def weights(self) -> dict[str, np.ndarray]:
        learned = {name: to_numpy(p) for name, p in self.lista.named_parameters()}  # W_e, S, θ / W, θ / γ, θ
        if isinstance(self.lista, CoupledLISTA) and self.lista.weights == "analytic":
            learned["W_analytic"] = to_numpy(self.lista.W_analytic)
        return {"W_d": to_numpy(self.W_d), **learned, "input_shape": np.asarray(self.input_shape)}


def make_encoder(config: ListaConfig, W_d: torch.Tensor) -> torch.nn.Module:
    """The T-step learned encoder of config.variant, initialised from ISTA on W_d (ALISTA: analytic W)."""
    c, kw = config, {"nonneg": config.nonnegative}
    if c.variant in ("lista", "lista_untied"):
        return LISTA(W_d, c.lam, c.steps, tied=c.variant == "lista", **kw)
    if c.variant == "lista_cp":
        return CoupledLISTA(W_d, c.lam, c.steps, weights="coupled", support=c.support_selection, **kw)
    return CoupledLISTA(W_d, c.lam, c.steps, weights="analytic", support=c.support_selection, ridge=c.alista_ridge, **kw)


def build(config: ListaConfig, dataset, generator: torch.Generator) -> ListaModel:
    return ListaModel(config, dataset.shape, generator)
