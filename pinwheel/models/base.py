"""What the generic training loop and the panels need from every model family."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn


class PinwheelModel(nn.Module):
    """A model family: a loss (or its own learning step), constraints, and views for the panels.

    Subclasses implement `loss`; a family whose learning is not plain gradient descent
    (e.g. projected ascent on S) overrides `train_step` instead.
    """

    #: panel kinds this model feeds, in the order the run page shows them
    panel_kinds: tuple[str, ...] = ("filter_grid",)

    def __init__(self, input_shape: tuple[int, int]):
        super().__init__()
        self.input_shape = tuple(input_shape)

    def loss(self, x: torch.Tensor, y: torch.Tensor | None, step: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Mean loss over the batch and its named terms (detached tensors; read only at frame time)."""
        raise NotImplementedError(f"{type(self).__name__} must implement loss() or override train_step()")

    @torch.no_grad()
    def project_(self) -> None:
        """Re-impose constraints after each update (unit-norm filters, norm bounds, ...)."""

    def make_optimizer(self, lr: float, kind: str = "adam") -> torch.optim.Optimizer:
        if kind == "sgd":
            return torch.optim.SGD(self.parameters(), lr=lr, momentum=0.9)
        return torch.optim.Adam(self.parameters(), lr=lr)

    def train_step(self, x, y, step: int, optimizer: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
        loss, terms = self.loss(x, y, step)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        self.project_()
        return {"loss": loss.detach(), **terms}

    @torch.no_grad()
    def frame_metrics(self, dataset) -> dict[str, float]:
        """Extra metrics computed at frame time only (e.g. held-out error); merged into the frame."""
        return {}

    def filter_bank(self) -> dict:
        """Filters to draw: {"filters": (m, h, w) array, "layout": {...}}; see panels.filter_grid."""
        raise NotImplementedError(f"{type(self).__name__} must implement filter_bank()")

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The code z for a batch (used by the panels and analysis)."""
        raise NotImplementedError(f"{type(self).__name__} must implement encode()")

    def weights(self) -> dict[str, np.ndarray]:
        """Arrays named with docs/models.md §0's symbols, plus the structure the analysis needs."""
        raise NotImplementedError(f"{type(self).__name__} must implement weights()")


def unit_columns_(w: torch.Tensor, max_norm: float = 1.0) -> None:
    """Scale the columns of w to norm ≤ max_norm in place (decoder atoms, notation of docs/models.md §0)."""
    norms = w.norm(dim=0, keepdim=True).clamp_min(max_norm)
    w.mul_(max_norm / norms)


def random_dictionary(n: int, m: int, generator: torch.Generator) -> torch.Tensor:
    """(n, m): m Gaussian atoms of unit norm, the decoder's starting point (columns = atoms, docs/models.md §0)."""
    w = torch.randn(n, m, generator=generator)
    return w / w.norm(dim=0, keepdim=True)


def to_numpy(t) -> np.ndarray:
    """A tensor (any device or dtype, detached) or an array-like → float32 numpy."""
    if isinstance(t, torch.Tensor):
        return t.detach().float().cpu().numpy()
    return np.asarray(t, dtype=np.float32)
