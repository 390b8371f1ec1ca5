"""Panel `group_activations`: on the fixed probe batch, the group norms ‖z_{P_j}‖ on the group topology.

Payload: `norms` (mean over the probe batch of each group's norm), `zero_share` (share of
(example, group) pairs whose group is all zero) and `zero_by_group`, `unit_mean` (mean activation
of every unit) and the topology to draw them on:
- `grid`: groups at their place on a rows×cols lattice (torus pools), units on the model's grid;
- `tree`: `parents` of the group roots (node colour = norm);
- `bars`: 1-D groups in order.
"""
from __future__ import annotations

import math

import numpy as np

from ._util import code, rounded, to_numpy

ZERO = 1e-6


def produce(model, probe_x) -> dict:
    g = model.groups
    w = to_numpy(g.weights)  # (n_groups, m)
    z = code(model, probe_x)  # (B, m)
    norms = np.sqrt(np.maximum(z**2 @ w.T, 0.0))  # (B, n_groups)
    zero = norms <= ZERO
    out = {
        "n_groups": int(w.shape[0]), "units": int(w.shape[1]), "probe_size": int(z.shape[0]),
        "norms": rounded(norms.mean(axis=0), 4),
        "zero_share": round(float(zero.mean()), 4),
        "zero_by_group": rounded(zero.mean(axis=0), 3),
        "unit_mean": rounded(z.mean(axis=0), 4),
        "active_share": round(float((np.abs(z) > ZERO).mean()), 4),
    }
    k = int(round(math.sqrt(w.shape[0])))
    if g.grid is not None and k * k == w.shape[0]:
        out["topology"] = {"type": "grid", "rows": k, "cols": k, "unit_rows": g.grid[0], "unit_cols": g.grid[1]}
    elif getattr(g, "parents", None) is not None:
        roots = g.group_roots if g.group_roots is not None else np.arange(w.shape[0])
        out["topology"] = {"type": "tree", "parents": [int(p) for p in g.parents], "roots": [int(r) for r in roots]}
    else:
        out["topology"] = {"type": "bars"}
    return out
