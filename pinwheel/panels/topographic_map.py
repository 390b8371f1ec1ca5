"""Panel `topographic_map`: the orientation preference map of a model whose units lie on a 2-D grid.

Every measure is pinwheel.analysis.topography's (docs/models.md §7): per unit the preferred orientation θ
(the wave vector's direction) and selectivity r from the filter's power spectrum; on the map the
pin-wheels with their handedness, the column spacing Λ, the density ρ (≈ π in cortex) and the
smoothness ⟨cos 2Δθ⟩ over grid neighbours, all over the map's valid region (a torus whole, with pairs and
plaquettes across its edges; a plain grid less the layout's `border` band). Where that region spans fewer
than 2Λ, ρ is None and `rho_note` says "too few periods to count pin-wheels". These measures need units with a spatial layout — a 2-D
grid or torus, or local filters at their positions on the image — so for any other layout (1-D blocks,
windows, a tree, a plain list) the producer returns None and the panel is absent: laying units out row
by row would report pin-wheels and a smoothness that mean nothing.
"""
from __future__ import annotations

import numpy as np

from ..analysis import topography
from ._util import filter_bank, png_base64, rounded

SCALE = 8  # pixels per unit in the map image


def map_image(theta: np.ndarray, selectivity: np.ndarray) -> np.ndarray:
    rows, cols = theta.shape
    sel = selectivity / (selectivity.max() + 1e-12)
    h, s, v = theta / np.pi * 6.0, 0.85, 0.15 + 0.85 * sel  # HSV → RGB, vectorised
    i = np.floor(h).astype(int) % 6
    f = h - np.floor(h)
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    table = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)]
    rgb = np.zeros((rows, cols, 3))
    for k, (r, g, b) in enumerate(table):
        rgb[i == k] = np.stack([r, g, b], axis=-1)[i == k]
    rgb = (255 * rgb).astype(np.uint8)
    return np.repeat(np.repeat(rgb, SCALE, axis=0), SCALE, axis=1)


SPATIAL = ("grid", "positions")  # a unit grid (torus or plain), or local filters on the image's own grid


def spatial_shape(layout: dict, m: int) -> tuple[int, int] | None:
    """(rows, cols) of the units' own 2-D layout, or None where the units have none."""
    if layout.get("type") not in SPATIAL or "rows" not in layout or "cols" not in layout:
        return None
    rows, cols = int(layout["rows"]), int(layout["cols"])
    return (rows, cols) if rows > 1 and cols > 1 and rows * cols == m else None


def produce(model, probe_x) -> dict | None:
    bank = filter_bank(model, probe_x)
    filters = np.asarray(bank["filters"], dtype=np.float32)
    layout = bank.get("layout") or {}
    shape = spatial_shape(layout, filters.shape[0])
    if shape is None:
        return None  # no spatial layout: the measure is undefined, so no panel (see module doc)
    rows, cols = shape
    on_grid = layout["type"] == "grid"
    wrap = bool(layout.get("wrap", False))  # a torus wraps; a plain grid and fields on an image do not
    border = int(layout.get("border", 0))  # units along each edge where a plain grid's map is not valid
    omap = topography.orientation_map(filters, (rows, cols))
    pins = topography.find_pinwheels(omap.theta, wrap)
    summary = topography.summarise(omap, wrap=wrap, pins=pins, border=border)
    theta, sel = np.mod(omap.theta, np.pi), omap.selectivity
    pw = [[round(float(p.row), 2), round(float(p.col), 2), int(p.handedness)] for p in pins]
    lam, rho, smooth = summary.spacing, summary.density, summary.smoothness
    return {
        "map_png": png_base64(map_image(theta, sel)), "rows": rows, "cols": cols, "scale": SCALE,
        "theta": rounded(theta, 3), "selectivity": rounded(sel, 3),
        "pinwheels": pw, "n_pinwheels": len(pw),
        "pinwheels_cw": sum(1 for p in pw if p[2] < 0), "pinwheels_ccw": sum(1 for p in pw if p[2] > 0),
        "lambda": None if not np.isfinite(lam) else round(lam, 3),
        # ρ only where the valid region spans ≥ 2Λ; else None and the note says "too few periods …"
        "rho": None if rho is None or not np.isfinite(rho) else round(rho, 3), "rho_note": summary.note,
        # the count on the map band-passed around Λ, as imaged maps are counted (topography.bandpass)
        "rho_band": None if summary.density_bandpassed is None else round(summary.density_bandpassed, 3),
        "n_pinwheels_counted": summary.n_pinwheels, "border": summary.border, "wrap": wrap,
        "hypercolumns": round(float(summary.periods), 2),
        "smoothness": round(float(smooth), 4), "on_grid": on_grid, "layout": layout["type"],
    }
