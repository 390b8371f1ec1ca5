"""Panel `sparsity`: how sparse the code of the fixed probe batch is.

Payload: mean L0 (active units per example) and its share of m, a histogram of |z| over the
active entries (log-spaced bins, so both the many small and the few large values show), and the
histogram of L0 across examples.
"""
from __future__ import annotations

import numpy as np

from ._util import code, rounded

ZERO = 1e-6
BINS = 30


def produce(model, probe_x) -> dict:
    z = np.abs(code(model, probe_x))  # (B, m)
    b, m = z.shape
    active = z > ZERO
    l0 = active.sum(axis=1)
    values = z[active]
    if values.size:
        lo, hi = max(float(values.min()), 1e-4), max(float(values.max()), 2e-4)
        edges = np.geomspace(lo, hi * 1.0001, BINS + 1)
        # bins are uniform in log|z|: a bincount of the bin index, not np.histogram's sort of every value
        index = (np.log(np.clip(values, lo, None)) - np.log(edges[0])) / (np.log(edges[-1]) - np.log(edges[0])) * BINS
        counts = np.bincount(np.clip(index.astype(np.int64), 0, BINS - 1), minlength=BINS)
    else:
        edges, counts = np.array([0.0, 1.0]), np.array([0])
    l0_counts, l0_edges = np.histogram(l0, bins=min(20, max(1, int(l0.max() - l0.min()) + 1)))
    return {
        "units": int(m), "probe_size": int(b),
        "l0_mean": round(float(l0.mean()), 3), "l0_fraction": round(float(l0.mean() / m), 4),
        "zero_units": int((~active.any(axis=0)).sum()),  # units silent on every probe example
        "abs_hist": {"edges": rounded(edges, 5), "counts": [int(c) for c in counts], "zeros": int((~active).sum())},
        "l0_hist": {"edges": rounded(l0_edges, 2), "counts": [int(c) for c in l0_counts]},
    }
