"""Data sets as in-memory tensors with deterministic sampling by seed (docs/models.md §8).

Batches are drawn with the run's generator, a CPU torch.Generator saved in every checkpoint, so a
run's samples are the same on every device and after a resume. The indices (a few hundred int64)
go to the data's device without a host synchronisation (`to_device`: pinned memory, asynchronous
copy), and the gather x[idx] runs there.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..configs import DigitsData, NaturalImagesData, NaturalPatchesData
from ..paths import data_root as default_data_root
from . import natural


@dataclass
class Dataset:
    """x: (N, n) flattened inputs; y: (N,) labels or None; shape: the 2-D shape of one input."""

    x: torch.Tensor
    y: torch.Tensor | None
    shape: tuple[int, int]
    x_test: torch.Tensor | None = None
    y_test: torch.Tensor | None = None
    n_classes: int = 0

    @property
    def dim(self) -> int:
        return self.x.shape[1]

    def to(self, device) -> "Dataset":
        for name in ("x", "y", "x_test", "y_test"):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, value.to(device))
        return self

    def batch(self, size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor | None]:
        idx = to_device(torch.randint(0, self.x.shape[0], (size,), generator=generator, device="cpu"), self.x.device)
        return self.x[idx], (self.y[idx] if self.y is not None else None)

    def probe(self, size: int = 256) -> tuple[torch.Tensor, torch.Tensor | None]:
        """A fixed batch (the first examples) so panels compare like with like across frames."""
        return self.x[:size], (self.y[:size] if self.y is not None else None)


def to_device(t: torch.Tensor, device: torch.device | str) -> torch.Tensor:
    """A small CPU tensor (indices drawn by the run's generator) on `device`, with no host synchronisation:
    on CUDA from pinned memory, asynchronously (the caching host allocator keeps the pinned block until the
    copy is done); unchanged on the CPU."""
    device = torch.device(device)
    if device.type == "cpu":
        return t
    if device.type == "cuda":
        t = t.pin_memory()
    return t.to(device, non_blocking=True)


def resolve_user_folder(folder: str, data_root: Path) -> Path:
    """A user's folder name, confined to the server's data root (no absolute paths, no '..')."""
    root = data_root.resolve()
    target = (root / folder).resolve()
    if not target.is_relative_to(root) or not target.is_dir():
        raise ValueError(f"image_folder: {folder!r} is not a folder under the data root")
    return target


def build_dataset(config, seed: int, data_root: Path | None = None) -> Dataset:
    rng = np.random.default_rng(seed)
    data_root = data_root or default_data_root()
    if isinstance(config, (NaturalPatchesData, NaturalImagesData)):  # x_test: held-out regions (natural.py doc)
        folder = resolve_user_folder(config.image_folder, data_root) if config.image_folder else None
        size = config.patch_size if isinstance(config, NaturalPatchesData) else config.image_size
        train, test = natural.patch_splits(size, config.pool_size, config.heldout_size, seed, folder)
        return Dataset(torch.from_numpy(train.reshape(len(train), -1)), None, (size, size),
                       x_test=torch.from_numpy(test.reshape(len(test), -1)))
    if isinstance(config, DigitsData):
        from . import digits  # noqa: PLC0415 — only digit runs pay for it

        return digits.build(config, rng, data_root)
    raise ValueError(f"unknown data kind {config!r}")
