"""Panel `reconstructions`: the first N probe inputs (top row) and the model's reconstructions (bottom).

Each pair shares one contrast scale (the input's), so a faint reconstruction looks faint. Payload:
one PNG strip, the per-example squared error and the relative error ‖x − x̂‖² / ‖x‖².
"""
from __future__ import annotations

import numpy as np

from ._util import PAD, code, grid_places, paste_tiles, png_base64, reconstruct, rounded, to_numpy

N = 10


def produce(model, probe_x) -> dict:
    x_t = probe_x[:N]
    h, w = model.input_shape
    x = to_numpy(x_t).reshape(len(x_t), -1)
    z = code(model, probe_x)[:N]
    x_hat = reconstruct(model, x_t, z).reshape(x.shape)
    n = x.shape[0]
    scale = np.abs(x).max(axis=1, keepdims=True) + 1e-12
    tiles = np.clip(127.5 + 127.5 * np.concatenate([x, x_hat]) / np.concatenate([scale, scale]), 0, 255)
    img = paste_tiles(tiles.astype(np.uint8).reshape(2 * n, h, w), grid_places(2 * n, n, h, w))  # inputs, then x̂
    err = ((x - x_hat) ** 2).sum(axis=1)
    rel = err / ((x**2).sum(axis=1) + 1e-12)
    return {"strip_png": png_base64(img), "count": n, "tile": [h, w], "pad": PAD,
            "sq_error": rounded(err, 4), "rel_error": rounded(rel, 4), "rel_error_mean": round(float(rel.mean()), 4)}
