"""Panel `reconstructions`: the first N probe inputs (top row) and the model's reconstructions (bottom).

Each pair shares one contrast scale (the input's), so a faint reconstruction looks faint. Payload:
one PNG strip, the per-example squared error and the relative error ‖x − x̂‖² / ‖x‖².
"""
from __future__ import annotations

import numpy as np

from ._util import code, png_base64, reconstruct, rounded, to_numpy

N = 10
PAD = 1
BG = 40


def produce(model, probe_x) -> dict:
    x_t = probe_x[:N]
    h, w = model.input_shape
    x = to_numpy(x_t).reshape(len(x_t), -1)
    z = code(model, probe_x)[:N]
    x_hat = reconstruct(model, x_t, z).reshape(x.shape)
    n = x.shape[0]
    scale = np.abs(x).max(axis=1, keepdims=True) + 1e-12
    img = np.full((2 * (h + PAD) + PAD, n * (w + PAD) + PAD), BG, dtype=np.uint8)
    for row, arr in enumerate((x, x_hat)):
        tiles = np.clip(127.5 + 127.5 * arr / scale, 0, 255).astype(np.uint8).reshape(n, h, w)
        for i in range(n):
            y0, x0 = PAD + row * (h + PAD), PAD + i * (w + PAD)
            img[y0:y0 + h, x0:x0 + w] = tiles[i]
    err = ((x - x_hat) ** 2).sum(axis=1)
    rel = err / ((x**2).sum(axis=1) + 1e-12)
    return {"strip_png": png_base64(img), "count": n, "tile": [h, w], "pad": PAD,
            "sq_error": rounded(err, 4), "rel_error": rounded(rel, 4), "rel_error_mean": round(float(rel.mean()), 4)}
