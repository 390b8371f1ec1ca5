"""Operations on whole square images shared by the models that see them (docs/models.md §5): an image's
periodic component, so it can be wrapped onto a torus without a seam, and the 8 symmetries of the square
as an augmentation drawn with the run's generator."""
from __future__ import annotations

import math

import torch

from ..data import to_device


def periodic_component(x: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """(B, H·W) → (B, H·W): the periodic component p of each image, x = p + s (Moisan 2011).

    s is the smooth image whose discrete Laplacian equals the jumps across opposite edges,
    Δs = v with v = (x_last − x_first) on the first row / column and the opposite on the last, so p has
    no seam when the image is wrapped onto a torus and keeps the image's content elsewhere:
    ŝ(q, r) = v̂(q, r) / (2 cos 2πq/H + 2 cos 2πr/W − 4), ŝ(0, 0) = 0.
    """
    h, w = shape
    img = x.view(-1, h, w)
    v = torch.zeros_like(img)
    v[:, 0, :] += img[:, -1, :] - img[:, 0, :]
    v[:, -1, :] += img[:, 0, :] - img[:, -1, :]
    v[:, :, 0] += img[:, :, -1] - img[:, :, 0]
    v[:, :, -1] += img[:, :, 0] - img[:, :, -1]
    q = torch.arange(h, device=x.device, dtype=x.dtype)[:, None]
    r = torch.arange(w, device=x.device, dtype=x.dtype)[None, :]
    denom = 2 * torch.cos(2 * math.pi * q / h) + 2 * torch.cos(2 * math.pi * r / w) - 4  # (H, W), 0 at (0, 0)
    denom[0, 0] = 1.0
    s_hat = torch.fft.fft2(v) / denom
    s_hat[:, 0, 0] = 0
    return (img - torch.fft.ifft2(s_hat).real).reshape(x.shape)


def dihedral_pixels(shape: tuple[int, int]) -> torch.Tensor:
    """(8, H·W) int64: for each symmetry of the square (rotations by k·90°, then the same flipped), the
    source pixel of every output pixel."""
    src = torch.arange(shape[0] * shape[1]).view(*shape)
    variants = [torch.rot90(src, k, dims=(0, 1)) for k in range(4)]
    return torch.stack(variants + [v.flip(1) for v in variants]).flatten(1)


def dihedral(x: torch.Tensor, shape: tuple[int, int], generator: torch.Generator | None = None,
             pixels: torch.Tensor | None = None) -> torch.Tensor:
    """Each square image of x (B, H·W) under one of the 8 symmetries of the square, drawn uniformly with
    `generator` (a CPU generator: the run's) — the same draws on every device.

    A rotation by 90° sends orientation θ to θ + π/2 and a flip sends θ to −θ, so the batch's
    mean orientation moment E[r·e^{2iθ}] becomes zero whatever the photographs favour.
    pixels: dihedral_pixels(shape) on x's device (built here when not given).
    """
    b = x.shape[0]
    which = to_device(torch.randint(0, 8, (b,), generator=generator), x.device)  # (B,)
    if pixels is None:
        pixels = dihedral_pixels(shape).to(x.device)
    return x.gather(1, pixels[which])  # (B, H·W): a permutation of each image's pixels
