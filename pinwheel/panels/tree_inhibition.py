"""Panel `tree_inhibition`: a lateral-inhibition model whose units lie on a tree (Gregor et al. 2011).

The tree is drawn by the renderer with each node's decoder filter as its picture and edges from
each node to its parent; node size follows the unit's mean |z| on the probe batch, its frame colour
the share of probes it is active on. Beside it, S ordered depth-first along the tree (each subtree a
contiguous block), so the structure the mask imposes — no inhibition along a branch — and what S
learned are visible together.
Payload: `parents`, `order` (depth-first), `depth` per node, `atlas_png` (filters row-major,
`cols` per row, tile + pad pitch; each contrast-normalised), `activity` (mean |z|), `active`
(share of probes with z ≠ 0), `inhibition` (mean (S|z|)_i: how strongly the others inhibit
unit i), `inhibition_term` (mean |z|ᵀS|z|), `active_per_probe` (mean count of active units),
`branch` (the tree's result: mean |cos| of the decoder filters over pairs on one root-to-leaf branch and
over pairs on different branches, their ratio, and the ratio with the filters dealt to the nodes at random,
`relabelled_mean` ± `relabelled_std` over RELABEL_DRAWS draws — the chance level the ratio is read against;
analysis/lateral.py, as bench/lateral.py measures it), and `matrix` (the interaction_matrix payload of S in
tree order).
"""
from __future__ import annotations

import math

import numpy as np

from ..analysis.lateral import relabel_control
from ..analysis.topography import depths
from ._util import PAD, code, filter_bank, grey_tiles, grid_places, paste_tiles, png_base64, rounded, to_numpy
from .filter_grid import shrink
from .interaction_matrix import matrix_payload


RELABEL_DRAWS = 50  # enough for the chance level's mean and spread; the bench uses 200 and adds a p-value


def applies(model) -> bool:
    return getattr(model, "parents", None) is not None and getattr(model, "S", None) is not None


def produce(model, probe_x) -> dict:
    parents = [int(p) for p in model.parents]
    bank = filter_bank(model, probe_x)
    filters = np.asarray(bank["filters"], dtype=np.float32)
    m, h0, w0 = filters.shape
    tiles = grey_tiles(shrink(filters))
    _, h, w = tiles.shape
    cols = math.ceil(math.sqrt(m))
    rows = math.ceil(m / cols)
    img = paste_tiles(tiles, grid_places(m, cols, h, w), size=(PAD + rows * (h + PAD), PAD + cols * (w + PAD)))
    z = np.abs(code(model, probe_x))  # (B, m)
    s = to_numpy(model.S)
    activity = z.mean(axis=0)
    control = relabel_control(filters, parents, draws=RELABEL_DRAWS, seed=0)
    seen = control["observed"]
    return {
        "count": m, "parents": parents, "depth": depths(parents).tolist(), "tile": [h, w], "source_tile": [h0, w0], "pad": PAD,
        "cols": cols, "atlas_png": png_base64(img),
        "activity": rounded(activity, 4), "active": rounded((z > 1e-6).mean(axis=0), 3),
        "inhibition": rounded((z @ s).mean(axis=0), 4),
        "inhibition_term": round(float(((z @ s) * z).sum(axis=1).mean()), 5),  # mean |z|ᵀS|z| on the probes
        "active_per_probe": round(float((z > 1e-6).sum(axis=1).mean()), 3),
        "branch": {"within": round(seen["cos_within"], 4), "across": round(seen["cos_across"], 4),
                   "ratio": round(seen["ratio"], 3), "relabelled_mean": round(control["shuffled_ratio_mean"], 3),
                   "relabelled_std": round(control["shuffled_ratio_std"], 3)},
        "matrix": matrix_payload(model, activity),
    }
