"""Config of DrSAE, the discriminative recurrent sparse auto-encoder (docs/models.md §2)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from .common import Strict


class DrSAEConfig(Strict):
    """z^{t+1} = ReLU(E x + S z^t − b), T steps; L1 + reconstruction through D + softmax(C·z^T/‖z^T‖)."""

    kind: Literal["drsae"] = "drsae"
    units: int = Field(400, ge=1, le=16_384, description="m, hidden units (the paper: 400)")
    steps: int = Field(11, ge=1, le=100, description="T, recurrent iterations (the paper: 11)")
    lam: float = Field(0.5, ge=0, description="λ, weight of the sparsity term λ‖z^T‖₁")
    class_weight: float = Field(1.0, ge=0, description="weight of the cross-entropy term in phase 2")
    unsupervised_steps: int = Field(2_000, ge=0, description="phase 1: reconstruction + sparsity only, "
                                    "then the classifier is added")
    init: Literal["data", "random"] = Field(
        "data", description="D's columns at the start: 'data' = random training inputs (unit norm), "
        "'random' = Gaussian; E, S, b then follow ISTA on D with step η")
    init_step: float | None = Field(None, gt=0, description="η of the ISTA initialisation E = ηDᵀ, S = I − ηDᵀD, "
                                    "b = ηλ; None: η = 1/L, L = ‖D‖₂²")
    encoder_lr_scale: float = Field(0.05, gt=0, le=1, description="E, S and b learn at train.lr × this (their "
                                    "entries are ~η, far smaller than D's; at the full Adam step units die)")
    lr_warmup_steps: int = Field(300, ge=0, description="the learning rate grows linearly from 0 over these first steps")
    lr_half_life_steps: int = Field(0, ge=0, description="after the warm-up the learning rate halves every so many "
                                    "steps; 0: constant")
    lam_warmup_steps: int = Field(0, ge=0, description="λ grows linearly from 0 to lam over these first steps")
    resample_dead_every: int = Field(0, ge=0, description="phase 1 only: every so many steps, restart each unit "
                                     "that was active on none of those batches' inputs as a prototype of a poorly "
                                     "reconstructed input (as the data initialisation does); 0: never")
    E_row_max: float = Field(1.25, gt=0, description="rows of E are kept at norm ≤ E_row_max/T")
    C_row_max: float = Field(5.0, gt=0, description="rows of C are kept at norm ≤ this")

    def check_data(self, data) -> None:
        """Called by RunConfig's validator: the classifier needs labels."""
        if getattr(data, "kind", None) not in ("mnist", "fashion_mnist", "sklearn_digits"):
            raise ValueError("data.kind: DrSAE needs labelled digits (mnist, fashion_mnist or sklearn_digits)")


PRESETS = [{
    "id": "drsae-mnist",
    "title": "DrSAE on MNIST",
    "description": "Rolfe & LeCun's discriminative recurrent sparse auto-encoder: 400 units, 11 recurrent "
                   "steps; first reconstruction + sparsity, then a classifier on the normalised code. Hidden "
                   "units split into whole-digit 'categorical' units and stroke-like 'part' units.",
    "config": {
        "model": {"kind": "drsae", "units": 400, "steps": 11, "lam": 0.5, "class_weight": 5.0,
                  "unsupervised_steps": 2000, "init": "data", "encoder_lr_scale": 0.05, "lr_warmup_steps": 300, "resample_dead_every": 100},
        "data": {"kind": "mnist", "source": "auto", "train_size": 8000, "test_size": 2000},
        "train": {"steps": 6000, "batch_size": 64, "lr": 2e-3},
    },
}]
