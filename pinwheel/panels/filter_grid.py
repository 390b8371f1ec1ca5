"""Panel `filter_grid`: the model's filters as one PNG atlas laid out on the model's topology.

Each filter is contrast-normalised on its own (zero stays mid-grey, ±max|f| maps to black/white),
so weak and strong filters are equally legible.
"""
from __future__ import annotations

import base64
import io
import math

import numpy as np
from PIL import Image

PAD = 1  # pixels of background between tiles


def atlas(filters: np.ndarray, cols: int) -> np.ndarray:
    """(m, h, w) filters → one uint8 image, tiles row-major, `cols` per row."""
    m, h, w = filters.shape
    rows = math.ceil(m / cols)
    scale = np.abs(filters).reshape(m, -1).max(axis=1)[:, None, None] + 1e-12
    tiles = np.clip(127.5 + 127.5 * filters / scale, 0, 255).astype(np.uint8)
    out = np.full((rows * (h + PAD) + PAD, cols * (w + PAD) + PAD), 40, dtype=np.uint8)
    for i in range(m):
        r, c = divmod(i, cols)
        out[PAD + r * (h + PAD):PAD + r * (h + PAD) + h, PAD + c * (w + PAD):PAD + c * (w + PAD) + w] = tiles[i]
    return out


def png_base64(image: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG", compress_level=6)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def produce(model, probe_x) -> dict:
    bank = model.filter_bank()
    filters = np.asarray(bank["filters"], dtype=np.float32)
    layout = bank["layout"]
    m, h, w = filters.shape
    cols = layout["cols"] if layout.get("type") == "grid" else math.ceil(math.sqrt(m))
    return {
        "atlas_png": png_base64(atlas(filters, cols)),
        "count": m, "tile": [h, w], "cols": cols, "rows": math.ceil(m / cols), "pad": PAD,
        "layout": layout,
    }
