"""Whitened natural images and their patches (docs/models.md §8, after Olshausen & Field 1997).

Whitening: in the Fourier domain multiply by |f|·exp(−(|f|/f₀)⁴), f₀ = 0.4·N cycles/picture —
|f| flattens the 1/f amplitude spectrum of natural scenes, the exponential rolls off the
highest frequencies where aliasing and noise live.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

# Photographs of natural scenes that scikit-image ships inside its wheel (no download).
SKIMAGE_PHOTOS = ("camera.png", "astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "grass.png",
                  "gravel.png", "brick.png", "moon.png", "coins.png", "motorcycle_left.png")
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}
MAX_IMAGE_PIXELS = 40_000_000  # refuse decompression bombs in user folders


def to_gray(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image, dtype=np.float64)
    if image.ndim == 3:
        image = image[..., :3] @ np.array([0.299, 0.587, 0.114])
    return image


def skimage_photographs() -> list[np.ndarray]:
    import skimage
    from PIL import Image

    folder = Path(skimage.__file__).parent / "data"
    return [to_gray(np.asarray(Image.open(folder / name))) for name in SKIMAGE_PHOTOS]


def folder_images(folder: Path) -> list[np.ndarray]:
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise ValueError(f"image_folder: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in {folder.name}")
    return [to_gray(np.asarray(Image.open(p).convert("L"))) for p in files]


def whiten(image: np.ndarray, f0_fraction: float = 0.4) -> np.ndarray:
    """Olshausen & Field whitening of one grey image; the result has unit variance."""
    rows, cols = image.shape
    n = min(rows, cols)
    fy = np.fft.fftfreq(rows) * n  # cycles per picture, on the shorter side's scale
    fx = np.fft.fftfreq(cols) * n
    f = np.hypot(fy[:, None], fx[None, :])
    filt = f * np.exp(-(f / (f0_fraction * n)) ** 4)
    out = np.real(np.fft.ifft2(np.fft.fft2(image - image.mean()) * filt))
    return out / (out.std() + 1e-12)


def radial_power_spectrum(image: np.ndarray, bins: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Radially averaged power spectrum (frequency in cycles/picture, mean power)."""
    rows, cols = image.shape
    n = min(rows, cols)
    power = np.abs(np.fft.fft2(image - image.mean())) ** 2
    f = np.hypot(*np.meshgrid(np.fft.fftfreq(rows) * n, np.fft.fftfreq(cols) * n, indexing="ij"))
    edges = np.linspace(1, n / 2, bins + 1)
    idx = np.digitize(f.ravel(), edges)
    mean = np.array([power.ravel()[idx == b].mean() for b in range(1, bins + 1)])
    return 0.5 * (edges[1:] + edges[:-1]), mean


def extract_patches(images: list[np.ndarray], size: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """`count` random size×size patches, each centred and scaled to unit norm-per-pixel contrast."""
    weights = np.array([(im.shape[0] - size + 1) * (im.shape[1] - size + 1) for im in images], dtype=float)
    which = rng.choice(len(images), size=count, p=weights / weights.sum())
    out = np.empty((count, size, size), dtype=np.float32)
    for i, k in enumerate(which):
        im = images[k]
        r = rng.integers(0, im.shape[0] - size + 1)
        c = rng.integers(0, im.shape[1] - size + 1)
        out[i] = im[r:r + size, c:c + size]
    out -= out.mean(axis=(1, 2), keepdims=True)
    out /= out.std(axis=(1, 2), keepdims=True) + 0.1  # +0.1: flat patches stay small instead of blowing up noise
    return out


def whitened_images(image_folder: Path | None) -> list[np.ndarray]:
    raw = folder_images(image_folder) if image_folder is not None else skimage_photographs()
    return [whiten(im) for im in raw]
