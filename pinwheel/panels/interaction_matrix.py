"""Panel `interaction_matrix`: the model's unit-to-unit interaction matrix S as a heat map.

Generic over models with an (m, m) `S`: lateral inhibition (S ≥ 0, zero on a structural mask) and
DrSAE's recurrent S (signed). Units are ordered by the model's own structure: depth-first along the
tree (each subtree a contiguous block, `blocks` gives the top-level subtrees) when the model has
`parents`, else by index. Above MAX_UNITS units, the MAX_UNITS most active units on the probe batch
are shown (`selection` says so) so a frame stays small and each cell stays a visible pixel.
Payload: `png` (8-bit grey, one pixel an entry: |S|/scale for S ≥ 0, 127.5 + 127.5·S/scale
when signed), `scale` = max |S_ij| off the diagonal (the diagonal is drawn clipped and reported
apart as `diag_mean`), the shown `order`, `mask_png` where the model fixes zeros (255 = free),
row sums, the share of non-zero entries, and the row/column sums of the shown block; with a mask,
`free_mean` and `free_spread` (mean and standard deviation of S over the entries the mask leaves free).
"""
from __future__ import annotations

import numpy as np

from ._util import code, matrix_png, png_base64, rounded, to_numpy, tree_order

MAX_UNITS = 64
ZERO = 1e-8


def shown_units(model, m: int, activity: np.ndarray | None) -> tuple[list[int], str]:
    """The units to draw, in the order to draw them, and how they were chosen."""
    parents = getattr(model, "parents", None)
    keep = set(range(m))
    selection = "all"
    if m > MAX_UNITS and activity is not None:
        keep = set(np.argsort(-activity, kind="stable")[:MAX_UNITS].tolist())
        selection = f"the {MAX_UNITS} most active of {m} units"
    elif m > MAX_UNITS:
        keep, selection = set(range(MAX_UNITS)), f"the first {MAX_UNITS} of {m} units"
    base = tree_order(list(parents)) if parents is not None else list(range(m))
    return [int(i) for i in base if i in keep], selection


def top_blocks(parents, order: list[int]) -> list[list[int]]:
    """[start, length] in `order` of each subtree hanging from a root (the tree's first split)."""
    if parents is None:
        return []
    parents = list(parents)
    top = {}
    for i in range(len(parents)):
        a = i
        while parents[a] >= 0 and parents[parents[a]] >= 0:
            a = parents[a]
        if parents[a] >= 0:  # i lies under the root child a
            top[i] = a
    blocks: list[list[int]] = []
    for k, unit in enumerate(order):
        a = top.get(unit)
        if a is None:
            continue
        if blocks and blocks[-1][2] == a and blocks[-1][0] + blocks[-1][1] == k:
            blocks[-1][1] += 1
        else:
            blocks.append([k, 1, a])
    return [[b[0], b[1]] for b in blocks]


def matrix_payload(model, activity: np.ndarray | None) -> dict:
    s = to_numpy(model.S)
    m = s.shape[0]
    order, selection = shown_units(model, m, activity)
    sub = s[np.ix_(order, order)]
    off = ~np.eye(len(order), dtype=bool)
    signed = bool((s < -ZERO).any())
    scale = float(np.abs(sub[off]).max()) if off.any() else 0.0
    out = {
        "units": m, "shown": len(order), "order": order, "selection": selection,
        "png": matrix_png(sub, scale, signed), "signed": signed, "scale": round(scale, 6),
        "diag_mean": round(float(np.diag(s).mean()), 5),
        "nonzero_share": round(float((np.abs(s[~np.eye(m, dtype=bool)]) > ZERO).mean()), 4),
        "row_sum": rounded(s.sum(axis=1)[order], 4),
        "blocks": top_blocks(getattr(model, "parents", None), order),
    }
    mask = getattr(model, "mask", None)
    if mask is not None and tuple(mask.shape) == (m, m):
        mk = to_numpy(mask) > 0
        out["mask_png"] = png_base64((mk[np.ix_(order, order)] * 255).astype(np.uint8))
        free = s[mk & ~np.eye(m, dtype=bool)]
        if free.size:  # a learned S spreads out; one pinned at a uniform value has spread 0 (a flat square)
            out["free_mean"] = round(float(free.mean()), 5)
            out["free_spread"] = round(float(free.std()), 5)
    return out


def applies(model) -> bool:
    """Models with a square S; a tree model showing `tree_inhibition` has S there already."""
    s = getattr(model, "S", None)
    if s is None or s.ndim != 2 or s.shape[0] != s.shape[1]:
        return False
    return not ("tree_inhibition" in model.panel_kinds and getattr(model, "parents", None) is not None)


def produce(model, probe_x) -> dict:
    z = code(model, probe_x)
    m = to_numpy(model.S).shape[0]
    activity = np.abs(z).mean(axis=0) if z.shape[1] == m else None
    return matrix_payload(model, activity)
