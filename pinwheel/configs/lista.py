"""Config of LISTA, the learned sparse encoder measured against FISTA (docs/models.md §1)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from .common import Strict


class ListaConfig(Strict):
    """A dictionary W_d (learned by sparse coding, or fixed) and a T-step LISTA encoder trained to match FISTA."""

    kind: Literal["lista"] = "lista"
    units: int = Field(128, ge=1, le=16_384, description="m, code units (atoms of W_d)")
    lam: float = Field(0.5, ge=0, description="λ in E(x, z) = ½‖x − W_d z‖² + λ‖z‖₁")
    steps: int = Field(5, ge=1, le=100, description="T, unrolled LISTA steps")
    target: Literal["fista", "energy"] = Field(
        "fista", description="'fista': regress FISTA's codes ½‖z_LISTA − z*‖²; 'energy': minimise E(x, z_LISTA)")
    fista_steps: int = Field(200, ge=1, le=5_000, description="FISTA iterations for the reference code z*")
    dictionary_steps: int = Field(
        1_500, ge=0, description="W_d is learned jointly (sparse coding on z*) for these steps, then frozen; "
        "0: a fixed random dictionary")
    nonnegative: bool = Field(False, description="codes z ≥ 0 (ReLU thresholds instead of soft shrinkage)")
    variant: Literal["lista", "lista_untied", "lista_cp", "alista"] = Field(
        "lista", description="'lista': Gregor & LeCun, one W_e, S, θ for all steps; 'lista_untied': a set per step; "
        "'lista_cp': coupled weights, W_k and θ_k per layer (Chen et al. 2018); 'alista': analytic W, learned "
        "step sizes and thresholds only (Liu et al. 2019)")
    support_selection: float = Field(
        0.0, ge=0, lt=0.1, description="lista_cp/alista: layer k lets the min(k·p, 10·p) largest entries of each code "
        "pass unshrunk (Chen et al.'s support selection); 0: off")
    alista_ridge: float = Field(
        2.0, ge=0, le=1_000, description="alista: W from (W_dW_dᵀ + ρI)⁻¹W_d, ρ = this × the mean eigenvalue of "
        "W_dW_dᵀ; 0 is the paper's exact inverse, ill-conditioned on natural-patch dictionaries")

    @model_validator(mode="after")
    def _variant_options(self):
        if self.support_selection > 0 and self.variant not in ("lista_cp", "alista"):
            raise ValueError(f"support_selection: only for lista_cp and alista, not variant {self.variant!r}")
        return self


PRESETS = [{
    "id": "lista-vs-fista",
    "title": "LISTA vs FISTA on natural patches",
    "description": "A dictionary learned by sparse coding on whitened 8×8 patches, and a 5-step learned encoder "
                   "(Gregor & LeCun 2010) trained on the energy itself: its energy against FISTA's after as many "
                   "iterations, frame by frame.",
    "config": {
        "model": {"kind": "lista", "units": 128, "lam": 0.5, "steps": 5, "target": "energy", "fista_steps": 200,
                  "dictionary_steps": 1500},
        "data": {"kind": "natural_patches", "patch_size": 8},
        "train": {"steps": 4000, "batch_size": 128, "lr": 1e-3},
    },
}]
