"""Measuring a lateral-inhibition model (docs/models.md §6): its codes, its learned S, and controls.

Codes z (B, m) of patches x (B, n) with reconstructions x̂ = W_d z:

    active per patch      mean_b #{i : z_bi ≠ 0}
    ever active           share of units with z_bi ≠ 0 on at least one patch (dead: never)
    relative error        Σ_b ‖x_b − x̂_b‖² / Σ_b ‖x_b‖²   (share of the patch energy left unexplained)
    inhibition term       mean_b |z_b|ᵀ S |z_b|
    cross co-activity     share of patches on which two units free to inhibit each other (mask) are both active

S against its start S₀, over the entries the mask leaves free: spread (standard deviation) now and
at the start, the largest |S − S₀|, ‖S − S₀‖ / ‖S₀‖, and the shares at the cap β and at 0.

Random-relabelling control: the tree statistic (mean |cos| within a branch / across branches,
pinwheel.analysis.topography.branch_similarity) recomputed with the filters dealt to the tree's
nodes at random. A learned structure stands out of that distribution; a ratio the mask would give
any set of filters does not. For a grid the same control shuffles units over the grid and
recomputes the map's smoothness.
"""
from __future__ import annotations

import numpy as np

from .topography import branch_similarity, orientation_map, smoothness


def code_statistics(x: np.ndarray, z: np.ndarray, x_hat: np.ndarray) -> dict:
    """Activity and reconstruction numbers of codes z (B, m) of x (B, n) reconstructed as x_hat (B, n)."""
    x, z, x_hat = (np.asarray(a, dtype=np.float64) for a in (x, z, x_hat))
    active = z != 0
    ever = active.any(axis=0)
    residual = ((x - x_hat) ** 2).sum(axis=1)
    energy = (x**2).sum(axis=1)
    return {"patches": len(x), "active_per_patch": float(active.sum(axis=1).mean()),
            "ever_active_share": float(ever.mean()), "dead_units": int((~ever).sum()),
            "relative_error": float(residual.sum() / max(energy.sum(), 1e-300)),
            "relative_error_norm": float(np.mean(np.sqrt(residual / np.maximum(energy, 1e-300)))),
            "active_share_per_unit": active.mean(axis=0).tolist()}


def inhibition_term(z: np.ndarray, s: np.ndarray) -> float:
    """mean_b |z_b|ᵀ S |z_b|."""
    a = np.abs(np.asarray(z, dtype=np.float64))
    return float(((a @ np.asarray(s, dtype=np.float64)) * a).sum(axis=1).mean())


def cross_coactivity(z: np.ndarray, mask: np.ndarray) -> float:
    """Share of patches with at least one active pair (i, j), i ≠ j, that the mask lets inhibit each other."""
    act = (np.asarray(z) != 0).astype(np.float64)
    free = np.asarray(mask, dtype=bool) & ~np.eye(len(mask), dtype=bool)
    return float((((act @ free) * act).sum(axis=1) > 0).mean())


def s_movement(s: np.ndarray, s0: np.ndarray, mask: np.ndarray, beta: float, rel_tol: float = 1e-3) -> dict:
    """How far S moved from S₀ on the free entries, and how much of it sits at a bound."""
    free = np.asarray(mask, dtype=bool) & ~np.eye(len(mask), dtype=bool)
    v, v0 = np.asarray(s, dtype=np.float64)[free], np.asarray(s0, dtype=np.float64)[free]
    d = v - v0
    return {"spread": float(v.std()), "spread_initial": float(v0.std()), "mean": float(v.mean()),
            "max_change": float(np.abs(d).max()) if d.size else 0.0,
            "relative_change": float(np.linalg.norm(d) / max(np.linalg.norm(v0), 1e-300)),
            "at_cap_share": float((v >= beta * (1 - rel_tol)).mean()),
            "at_zero_share": float((v <= beta * rel_tol).mean())}


def relabel_control(filters: np.ndarray, parents, draws: int = 200, seed: int = 0) -> dict:
    """branch_similarity of the filters as laid out, next to the same statistic with the filters dealt
    to the nodes at random (`draws` permutations): mean, standard deviation, 95th percentile and the
    share of draws whose ratio reaches the observed one (a one-sided permutation p-value)."""
    filters = np.asarray(filters)
    observed = branch_similarity(filters, parents)
    rng = np.random.default_rng(seed)
    ratios = np.array([branch_similarity(filters[rng.permutation(len(filters))], parents)["ratio"]
                       for _ in range(draws)])
    return {"observed": observed, "shuffled_ratio_mean": float(ratios.mean()), "shuffled_ratio_std": float(ratios.std()),
            "shuffled_ratio_p95": float(np.quantile(ratios, 0.95)), "draws": draws,
            "p_value": float((1 + (ratios >= observed["ratio"]).sum()) / (1 + draws))}


def grid_shuffle_control(filters: np.ndarray, grid: tuple[int, int], wrap: bool, draws: int = 50, seed: int = 0) -> dict:
    """Map smoothness as laid out, next to the smoothness with the units placed on the grid at random."""
    omap = orientation_map(np.asarray(filters), grid)
    rng = np.random.default_rng(seed)
    theta = omap.theta.ravel()
    shuffled = np.array([smoothness(theta[rng.permutation(theta.size)].reshape(grid), wrap=wrap) for _ in range(draws)])
    return {"observed": smoothness(omap.theta, wrap=wrap), "shuffled_mean": float(shuffled.mean()),
            "shuffled_std": float(shuffled.std()), "draws": draws}
