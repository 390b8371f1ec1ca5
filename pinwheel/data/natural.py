"""Whitened natural images and their patches (docs/models.md §8, after Olshausen & Field 1997).

Whitening: in the Fourier domain multiply by |f|·exp(−(|f|/f₀)⁴), f₀ = 0.4·N cycles/picture —
|f| flattens the 1/f amplitude spectrum of natural scenes, the exponential rolls off the
highest frequencies where aliasing and noise live.

Held-out split (`split_photographs`, `heldout_patches`). Every photograph is cut in two before
whitening: the last HELDOUT_FRACTION (20 %) of its longer side, at least one patch wide, is the
held-out region; the rest is the training region. Training patches (`pool_size`) are drawn only
from training regions, held-out patches only from held-out regions, so no held-out patch shares a
pixel with any patch the training sampler can draw — and, since each region is whitened on its own,
no held-out pixel even enters a training pixel through the whitening filter. A region of *every*
photograph rather than whole held-out photographs: the 11 default photographs differ a lot
(grass, brick, a face, the moon), so holding out whole ones would test on statistics that training
never saw, and a user's folder may hold a single image. Held-out patches are drawn with their own
random stream (`heldout_rng(seed)`), deterministic per seed.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

# Photographs of natural scenes that scikit-image ships inside its wheel (no download).
SKIMAGE_PHOTOS = ("camera.png", "astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "grass.png",
                  "gravel.png", "brick.png", "moon.png", "coins.png", "motorcycle_left.png")
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}
MAX_IMAGE_PIXELS = 40_000_000  # refuse decompression bombs in user folders
HELDOUT_FRACTION = 0.2  # share of each photograph's longer side kept for held-out patches
SPLITS = ("train", "heldout")


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


def sample_patches(images: list[np.ndarray], size: int, count: int, rng: np.random.Generator
                   ) -> tuple[np.ndarray, np.ndarray]:
    """`count` random size×size crops, each centred and scaled to unit norm-per-pixel contrast, and their
    positions (count, 3): image index, top row, left column. Images are drawn in proportion to their
    number of positions."""
    if not isinstance(size, (int, np.integer)) or size < 1:
        raise ValueError(f"patch_size: a positive integer, got {size!r}")
    if not isinstance(count, (int, np.integer)) or count < 0:
        raise ValueError(f"count: a non-negative integer, got {count!r}")
    weights = np.array([max(im.shape[0] - size + 1, 0) * max(im.shape[1] - size + 1, 0) for im in images], dtype=float)
    if weights.sum() == 0:
        raise ValueError(f"patch_size: {size} pixels is larger than every image "
                         f"({', '.join(f'{im.shape[0]}×{im.shape[1]}' for im in images) or 'no images'})")
    which = rng.choice(len(images), size=count, p=weights / weights.sum())
    out = np.empty((count, size, size), dtype=np.float32)
    where = np.empty((count, 3), dtype=np.int64)
    for i, k in enumerate(which):
        im = images[k]
        r = rng.integers(0, im.shape[0] - size + 1)
        c = rng.integers(0, im.shape[1] - size + 1)
        out[i] = im[r:r + size, c:c + size]
        where[i] = (k, r, c)
    out -= out.mean(axis=(1, 2), keepdims=True)
    out /= out.std(axis=(1, 2), keepdims=True) + 0.1  # +0.1: flat patches stay small instead of blowing up noise
    return out, where


def extract_patches(images: list[np.ndarray], size: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """`count` random size×size patches, each centred and scaled to unit norm-per-pixel contrast."""
    return sample_patches(images, size, count, rng)[0]


def split_boxes(shape: tuple[int, int], size: int, fraction: float = HELDOUT_FRACTION
                ) -> dict[str, tuple[slice, slice]] | None:
    """(rows, cols) slices of a photograph's training and held-out regions: the held-out region is the last
    `fraction` of the longer side (at least `size` pixels), the training region the rest; None when the
    photograph cannot hold a size×size patch in each."""
    rows, cols = shape
    long_axis = 1 if cols >= rows else 0
    length, short = (cols, rows) if long_axis else (rows, cols)
    held = max(int(np.ceil(fraction * length)), size)
    if short < size or length - held < size:
        return None
    cut = length - held
    train, heldout = slice(0, cut), slice(cut, length)
    full = slice(0, short)
    if long_axis:
        return {"train": (full, train), "heldout": (full, heldout)}
    return {"train": (train, full), "heldout": (heldout, full)}


def split_photographs(raw: list[np.ndarray], size: int, fraction: float = HELDOUT_FRACTION
                      ) -> dict[str, list[np.ndarray]]:
    """Whitened training and held-out regions of grey photographs ({"train": [...], "heldout": [...]}, one
    region per photograph in each), each region whitened on its own. Photographs too small for a size×size
    patch in both regions are left out; none left is an error naming the patch size."""
    if not 0 < fraction < 1:
        raise ValueError(f"fraction: the held-out share of each photograph lies in (0, 1), got {fraction}")
    out: dict[str, list[np.ndarray]] = {name: [] for name in SPLITS}
    for image in raw:
        boxes = split_boxes(image.shape, size, fraction)
        if boxes is not None:
            for name in SPLITS:
                out[name].append(whiten(image[boxes[name]]))
    if not out["train"]:
        raise ValueError(f"patch_size: {size} pixels leaves no photograph room for a training and a held-out "
                         f"region ({', '.join(f'{r}×{c}' for r, c in (im.shape for im in raw)) or 'no images'})")
    return out


def heldout_rng(seed: int) -> np.random.Generator:
    """The held-out sampler's random stream: deterministic per seed, independent of the training pool's."""
    return np.random.default_rng([int(seed), 0x4E1D])


def raw_photographs(image_folder: Path | None) -> list[np.ndarray]:
    return folder_images(image_folder) if image_folder is not None else skimage_photographs()


def training_patches(size: int, count: int, seed: int, image_folder: Path | None = None) -> np.ndarray:
    """(count, size, size) patches from the training regions, drawn as a run's pool is (rng = seed)."""
    regions = split_photographs(raw_photographs(image_folder), size)["train"]
    return extract_patches(regions, size, count, np.random.default_rng(seed))


def heldout_patches(size: int, count: int, seed: int, image_folder: Path | None = None) -> np.ndarray:
    """(count, size, size) patches from the held-out regions only (see the module doc), deterministic per seed;
    the same patches as a run's `x_test` for that seed and `heldout_size` = count."""
    regions = split_photographs(raw_photographs(image_folder), size)["heldout"]
    return extract_patches(regions, size, count, heldout_rng(seed))


def patch_splits(size: int, pool_size: int, heldout_size: int, seed: int, image_folder: Path | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """A run's training pool and held-out set, loading and whitening the photographs once."""
    regions = split_photographs(raw_photographs(image_folder), size)
    return (extract_patches(regions["train"], size, pool_size, np.random.default_rng(seed)),
            extract_patches(regions["heldout"], size, heldout_size, heldout_rng(seed)))


def whitened_images(image_folder: Path | None) -> list[np.ndarray]:
    """Whole photographs, whitened: no held-out split (for figures and spectra; a run uses `patch_splits`)."""
    return [whiten(im) for im in raw_photographs(image_folder)]
