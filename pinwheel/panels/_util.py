"""Helpers shared by the panel producers (not a panel kind: the registry skips names with '_')."""
from __future__ import annotations

import base64
import io

import numpy as np
import torch
from PIL import Image

from ..models.base import to_numpy


def png_base64(image: np.ndarray, optimize: bool = False) -> str:
    """uint8 (h, w) grey or (h, w, 3) RGB → base64 PNG text."""
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG", compress_level=9 if optimize else 6)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def rounded(values, digits: int = 4) -> list[float]:
    """Floats for JSON, rounded so a frame stays small; NaN/inf become None."""
    arr = np.round(np.asarray(values, dtype=np.float64).ravel(), digits)
    out = arr.tolist()
    if not np.isfinite(arr).all():
        out = [v if np.isfinite(v) else None for v in out]
    return out


_memo: dict = {"key": None, "values": {}}


def memo(model, probe_x, name: str, compute):
    """One value per (model state, probe batch) shared by every producer of a frame: the code and the
    filter bank are computed once a frame, not once a panel. The key holds the parameters' version
    counters, which every optimizer step bumps, so a new step never sees a stale value."""
    key = (id(model), id(probe_x), tuple(p._version for p in model.parameters()))
    if _memo["key"] != key:
        _memo["key"], _memo["values"] = key, {}
    values = _memo["values"]
    if name not in values:
        values[name] = compute()
    return values[name]


def code(model, probe_x) -> np.ndarray:
    """The code z of the probe batch as (batch, m) numpy (models with extra axes are flattened)."""
    def compute():
        with torch.no_grad():
            z = to_numpy(model.encode(probe_x))
        return np.ascontiguousarray(z.reshape(z.shape[0], -1))  # a transposed view makes z @ W 100× slower
    return memo(model, probe_x, "code", compute)


def filter_bank(model, probe_x) -> dict:
    return memo(model, probe_x, "filter_bank", model.filter_bank)


def decoder_filters(model) -> np.ndarray:
    return np.asarray(model.filter_bank()["filters"], dtype=np.float32)


def encoder_filters(model, shape: tuple[int, int, int]) -> np.ndarray | None:
    """The encoder's rows as (m, h, w) when the model has a dense encoder W_e of that size."""
    w_e = getattr(model, "W_e", None)
    if w_e is None:
        return None
    arr = to_numpy(w_e)
    if arr.size != int(np.prod(shape)):
        return None
    return arr.reshape(shape)


def reconstruct(model, x: torch.Tensor, z: np.ndarray) -> np.ndarray:
    """x̂ for a batch: the model's own decode() when it has one, else the linear decoder Σ z_i d_i."""
    decode = getattr(model, "decode", None)
    if callable(decode):
        with torch.no_grad():
            return to_numpy(decode(model.encode(x))).reshape(x.shape[0], -1)
    d = decoder_filters(model)
    return z @ d.reshape(d.shape[0], -1)


PAD, BG = 1, 40  # pixels of background between the tiles of an atlas; the background's grey level


def grid_places(count: int, cols: int, h: int, w: int, pad: int = PAD) -> list[tuple[int, int]]:
    """(x, y) top-left pixel corners of `count` h×w tiles row-major, `cols` per row, `pad` around each."""
    return [(pad + (i % cols) * (w + pad), pad + (i // cols) * (h + pad)) for i in range(count)]


def paste_tiles(tiles: np.ndarray, places: list[tuple[int, int]], size: tuple[int, int] | None = None,
                pad: int = PAD, bg: int = BG) -> np.ndarray:
    """uint8 tiles (m, h, w) at (x, y) pixel corners → one uint8 image on a `bg` background: (height,
    width) = `size`, else fitted to the places with `pad` beyond the last tile."""
    m, h, w = tiles.shape
    if size is None:
        size = (max(y for _, y in places) + h + pad, max(x for x, _ in places) + w + pad)
    out = np.full(size, bg, dtype=np.uint8)
    for tile, (x, y) in zip(tiles, places):
        out[y:y + h, x:x + w] = tile
    return out


def grey_tiles(images: np.ndarray) -> np.ndarray:
    """Per-image contrast: 0 stays mid-grey, ±max|v| maps to black/white."""
    m = images.shape[0]
    scale = np.abs(images).reshape(m, -1).max(axis=1).reshape((m,) + (1,) * (images.ndim - 1)) + 1e-12
    return np.clip(127.5 + 127.5 * images / scale, 0, 255).astype(np.uint8)


def _box_weights(n: int, k: int) -> np.ndarray:
    """(k, n) matrix averaging n samples into k equal-width boxes (fractional overlaps weighted)."""
    edges = np.linspace(0, n, k + 1)
    lo, hi = edges[:-1, None], edges[1:, None]
    j = np.arange(n)[None, :]
    overlap = np.clip(np.minimum(hi, j + 1) - np.maximum(lo, j), 0, None)
    return overlap / overlap.sum(axis=1, keepdims=True)


def area_resize(images: np.ndarray, h: int, w: int) -> np.ndarray:
    """(m, H, W) → (m, h, w) by area averaging (any ratio, vectorised over the stack)."""
    if images.shape[1:] == (h, w):
        return images
    return np.einsum("ai,mij,bj->mab", _box_weights(images.shape[1], h), images, _box_weights(images.shape[2], w),
                     optimize=True).astype(np.float32)


def matrix_png(s: np.ndarray, scale: float, signed: bool) -> str:
    """A square matrix as an 8-bit grey PNG: |s|/scale (unsigned) or 127.5 + 127.5·s/scale (signed)."""
    scale = scale if scale > 0 else 1.0
    img = 127.5 + 127.5 * s / scale if signed else 255.0 * s / scale
    return png_base64(np.clip(np.rint(img), 0, 255).astype(np.uint8))


def tree_order(parents) -> list[int]:
    """Depth-first pre-order of a tree given by parents (−1 for roots): each subtree is contiguous."""
    children: dict[int, list[int]] = {}
    roots = []
    for i, p in enumerate(parents):
        (roots if p < 0 else children.setdefault(int(p), [])).append(i)
    order, stack = [], roots[::-1]
    while stack:
        node = stack.pop()
        order.append(node)
        stack.extend(children.get(node, [])[::-1])
    return order
