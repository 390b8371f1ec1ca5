"""Panel `topographic_map`: the orientation preference map of a model whose units lie on a 2-D grid.

For every filter, the power spectrum P(k) (DC removed) gives the preferred orientation
θ = ½ arg Σ_k P(k) e^{2iφ_k} (φ_k the angle of k; the edge runs perpendicular to k, θ here is
the edge's orientation) and the selectivity |Σ P e^{2iφ}| / Σ P ∈ [0, 1].
On the map (wrapping at the edges, as the torus does):
- pin-wheels: plaquettes of 2×2 units around which 2θ winds by ±2π (+1 counter-clockwise,
  −1 clockwise), placed at the plaquette's centre;
- Λ: the column spacing, grid-side / the power-weighted mean radial frequency of e^{2iθ}·selectivity;
- ρ: pin-wheels per Λ² (≈ π in the visual cortex of many species);
- smoothness: 1 − mean |Δθ| between grid neighbours / 45° (1 = smooth, 0 = random orientations).
When pinwheel/analysis/topography.py is present its measures are used (θ there is the wave vector's
direction, smoothness the mean cos 2Δθ; `measured_by` says which); this module's own estimate otherwise.
"""
from __future__ import annotations

import numpy as np

from ._util import filter_bank, png_base64, rounded

SCALE = 8  # pixels per unit in the map image


def orientation_selectivity(filters: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(m, h, w) filters → orientation θ ∈ [0, π) of each filter's edges, selectivity ∈ [0, 1]."""
    m, h, w = filters.shape
    f = filters - filters.mean(axis=(1, 2), keepdims=True)
    power = np.abs(np.fft.fft2(f)) ** 2  # (m, h, w)
    ky = np.fft.fftfreq(h)[:, None] * np.ones((1, w))
    kx = np.ones((h, 1)) * np.fft.fftfreq(w)[None, :]
    phi = np.arctan2(ky, kx)
    e2 = np.exp(2j * phi)
    e2[0, 0] = 0
    total = power.sum(axis=(1, 2)) + 1e-12
    resultant = (power * e2).sum(axis=(1, 2)) / total
    theta_k = 0.5 * np.angle(resultant)  # orientation of the wave vector
    theta = np.mod(theta_k + np.pi / 2, np.pi)  # edges run perpendicular to it
    return theta, np.abs(resultant)


def pinwheels(theta: np.ndarray) -> list[list[float]]:
    """[[row, col, ±1], ...] at plaquette centres where 2θ winds by ±2π (torus)."""
    a = 2 * theta

    def wrap(d):
        return (d + np.pi) % (2 * np.pi) - np.pi

    r = np.roll
    # corners counter-clockwise on screen (row grows downwards): (i,j) → (i+1,j) → (i+1,j+1) → (i,j+1)
    a00, a10, a11, a01 = a, r(a, -1, 0), r(r(a, -1, 0), -1, 1), r(a, -1, 1)
    wind = wrap(a10 - a00) + wrap(a11 - a10) + wrap(a01 - a11) + wrap(a00 - a01)
    n = np.rint(wind / (2 * np.pi)).astype(int)
    return [[float(i) + 0.5, float(j) + 0.5, int(n[i, j])] for i, j in zip(*np.nonzero(n))]


def column_spacing(theta: np.ndarray, selectivity: np.ndarray) -> float:
    rows, cols = theta.shape
    field = selectivity * np.exp(2j * theta)
    field = field - field.mean()
    power = np.abs(np.fft.fft2(field)) ** 2
    k = np.hypot(np.fft.fftfreq(rows)[:, None] * rows, np.fft.fftfreq(cols)[None, :] * cols)
    power[0, 0] = 0
    if power.sum() <= 0:
        return float("nan")
    k_mean = float((power * k).sum() / power.sum())
    return float(max(rows, cols) / k_mean) if k_mean > 0 else float("nan")


def smoothness(theta: np.ndarray) -> float:
    d = []
    for axis in (0, 1):
        diff = np.abs(theta - np.roll(theta, 1, axis=axis))
        d.append(np.minimum(diff, np.pi - diff))
    return float(1 - np.mean(d) / (np.pi / 4))


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


def produce(model, probe_x) -> dict:
    bank = filter_bank(model, probe_x)
    filters = np.asarray(bank["filters"], dtype=np.float32)
    layout = bank.get("layout") or {}
    m = filters.shape[0]
    if layout.get("type") == "grid":
        rows, cols = int(layout["rows"]), int(layout["cols"])
    else:  # no topology of its own: a near-square grid still shows whether neighbours agree
        cols = int(np.ceil(np.sqrt(m)))
        rows = int(np.ceil(m / cols))
    try:
        from ..analysis import topography  # the science library's measures, when present
    except ImportError:
        topography = None
    if topography is not None and rows * cols == m:
        omap = topography.orientation_map(filters, (rows, cols))
        summary = topography.summarise(omap, wrap=layout.get("type") == "grid")
        theta, sel = np.mod(omap.theta, np.pi), omap.selectivity
        pw = [[round(float(p.row), 2), round(float(p.col), 2), int(p.handedness)] for p in topography.find_pinwheels(omap.theta)]
        lam, rho, smooth, source = summary.spacing, summary.density, summary.smoothness, "pinwheel.analysis.topography"
    else:
        theta, sel = orientation_selectivity(filters)
        if rows * cols != m:
            theta = np.concatenate([theta, np.zeros(rows * cols - m)])
            sel = np.concatenate([sel, np.zeros(rows * cols - m)])
        theta, sel = theta.reshape(rows, cols), sel.reshape(rows, cols)
        pw = pinwheels(theta)
        lam = column_spacing(theta, sel)
        rho = len(pw) / (rows * cols / lam**2) if np.isfinite(lam) and lam > 0 else float("nan")
        smooth, source = smoothness(theta), "pinwheel.panels.topographic_map"
    return {
        "map_png": png_base64(map_image(theta, sel)), "rows": rows, "cols": cols, "scale": SCALE,
        "theta": rounded(theta, 3), "selectivity": rounded(sel, 3),
        "pinwheels": pw, "n_pinwheels": len(pw),
        "pinwheels_cw": sum(1 for p in pw if p[2] < 0), "pinwheels_ccw": sum(1 for p in pw if p[2] > 0),
        "lambda": None if not np.isfinite(lam) else round(lam, 3),
        "rho": None if not np.isfinite(rho) else round(rho, 3),
        "smoothness": round(float(smooth), 4), "on_grid": layout.get("type") == "grid", "measured_by": source,
    }
