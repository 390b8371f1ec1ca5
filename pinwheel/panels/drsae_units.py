"""Panel `drsae_units`: DrSAE's categorical vs part units (Rolfe & LeCun 2013, §4).

Uses pinwheel.analysis.unit_types on the probe batch (its labels; the model's own predictions
when the data has none, `labels_from` says which). Payload:
- `counts` of categorical / part / dead units and the analysis' `means` per kind;
- `kinds` per unit (0 dead, 1 part, 2 categorical) with `selectivity`, `growth` (2 decimals)
  and `preferred_class` — the renderer's scatter of selectivity against growth;
- `buildup`: for each kind, the mean activity z^t over its units and the probe batch at every
  iteration t = 1…T, and the same divided by its value at T (how the recurrence builds it up);
- `columns_png`: decoder columns D[:, i] of up to SHOW units of each kind (categorical by
  selectivity, part by mean activity), one row per kind, each tile contrast-normalised and
  area-averaged when large; `columns` lists those units row by row.
"""
from __future__ import annotations

import numpy as np
import torch

from ..analysis import unit_types
from ._util import PAD, area_resize, grey_tiles, memo, paste_tiles, png_base64, rounded, to_numpy

SHOW = 12
MAX_TILE = 14  # tiles larger than this are area-averaged (28×28 MNIST columns → 14×14)
KIND_CODE = {"dead": 0, "part": 1, "categorical": 2}


def produce(model, probe_x, probe_y=None) -> dict:
    n_classes = int(model.C.shape[0])
    with torch.no_grad():
        labels_from = "data"
        if probe_y is None:
            probe_y, labels_from = model.predict(probe_x), "predicted"
        result = unit_types.split(model, probe_x, probe_y, n_classes)
        traj = memo(model, probe_x, "trajectory", lambda: [to_numpy(z) for z in model.trajectory(probe_x)])
    stats, labels = result["stats"], result["labels"]
    m = len(labels)
    buildup = {}
    for kind in ("categorical", "part"):
        sel = labels == kind
        curve = np.array([z[:, sel].mean() if sel.any() else 0.0 for z in traj])
        buildup[kind] = {"mean": rounded(curve, 5),
                         "relative": rounded(curve / curve[-1] if curve[-1] > 0 else np.zeros_like(curve), 4)}
    cat = np.flatnonzero(labels == "categorical")
    part = np.flatnonzero(labels == "part")
    cat = cat[np.argsort(-stats["selectivity"][cat], kind="stable")][:SHOW]
    part = part[np.argsort(-stats["mean_activity"][part], kind="stable")][:SHOW]
    h, w = model.input_shape
    d = to_numpy(model.D).T.reshape(m, h, w)  # decoder columns as images
    scale = min(1.0, MAX_TILE / max(h, w))
    th, tw = max(3, round(h * scale)), max(3, round(w * scale))
    rows = [cat, part]
    shown = [(k, r) for r, units in enumerate(rows) for k in range(len(units))]  # (column, row) of each tile
    tiles = grey_tiles(area_resize(d[np.concatenate(rows)], th, tw)) if shown else d[:0]
    img = paste_tiles(tiles, [(PAD + k * (tw + PAD), PAD + r * (th + PAD)) for k, r in shown],
                      size=(PAD + 2 * (th + PAD), PAD + SHOW * (tw + PAD)))
    return {
        "units": m, "steps": len(traj), "probe_size": int(probe_x.shape[0]), "labels_from": labels_from,
        "counts": result["counts"],
        "means": {k: (None if not np.isfinite(v) else round(v, 4)) for k, v in result["means"].items()},
        "kinds": [KIND_CODE[str(k)] for k in labels],
        "selectivity": rounded(stats["selectivity"], 2), "growth": rounded(stats["growth"], 2),
        "preferred_class": [int(c) for c in stats["preferred_class"]],
        "buildup": buildup,
        "columns_png": png_base64(img), "columns": [[int(u) for u in cat], [int(u) for u in part]],
        "tile": [th, tw], "pad": PAD, "show": SHOW,
    }
