"""Measuring a lateral-inhibition model (docs/models.md §6): its codes, its learned S, and controls.

Codes z (B, m) of patches x (B, n) with reconstructions x̂ = W_d z:

    active per patch      mean_b #{i : z_bi ≠ 0}
    ever active           share of units with z_bi ≠ 0 on at least one patch (dead: never)
    relative error        Σ_b ‖x_b − x̂_b‖² / Σ_b ‖x_b‖²   (share of the patch energy left unexplained)
    inhibition term       mean_b |z_b|ᵀ S |z_b|
    cross co-activity     share of patches on which two units free to inhibit each other (mask) are both active

S against its start S₀, over the entries the mask leaves free: spread (standard deviation) now and
at the start, the largest |S − S₀|, ‖S − S₀‖ / ‖S₀‖, and the shares at the cap β and at 0.

Random-relabelling control: the tree statistics (mean |cos| within a branch / across branches and
the orientation agreement, pinwheel.analysis.topography.branch_similarity, and the cosine of the
filters' power spectra, which ignores phase and position) recomputed with the filters dealt to the
tree's nodes at random. A learned structure stands out of that distribution; a ratio the mask would give
any set of filters does not. For a grid the same control shuffles units over the grid and
recomputes the map's smoothness.
"""
from __future__ import annotations

import numpy as np

from .topography import branch_similarity, orientation_map, same_branch, smoothness, unit_properties


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


def spectral_similarity(filters: np.ndarray, pad_to: int = 16) -> np.ndarray:
    """(m, m) cosine between the filters' power spectra (zero-padded, mean removed): 1 for filters of one
    orientation and frequency whatever their phase or position, near 0 for disjoint spectra."""
    f = np.asarray(filters, dtype=np.float64)
    size = max(pad_to, *f.shape[1:])
    power = np.abs(np.fft.rfft2(f - f.mean(axis=(1, 2), keepdims=True), s=(size, size))) ** 2
    power = power.reshape(len(f), -1)
    power /= np.linalg.norm(power, axis=1, keepdims=True) + 1e-300
    return power @ power.T


def similarity_matrices(filters: np.ndarray) -> dict[str, np.ndarray]:
    """Pairwise filter similarities: |cos| of the flattened filters, orientation agreement cos 2Δθ, and
    the power-spectrum cosine (phase- and position-invariant)."""
    f = np.asarray(filters, dtype=np.float64).reshape(len(filters), -1)
    f = f / (np.linalg.norm(f, axis=1, keepdims=True) + 1e-12)
    theta = unit_properties(np.asarray(filters)).theta
    return {"cos": np.abs(f @ f.T), "orientation": np.cos(2 * (theta[:, None] - theta[None, :])),
            "spectrum": spectral_similarity(filters)}


def within_across(sims: dict[str, np.ndarray], branch: np.ndarray) -> dict[str, float]:
    """Mean of each similarity over pairs on one branch and over pairs on different branches: the |cos| and
    spectrum ratios within / across and the orientation gap within − across."""
    across = ~branch & ~np.eye(len(branch), dtype=bool)
    out = {}
    for name, m in sims.items():
        out[f"{name}_within"], out[f"{name}_across"] = float(m[branch].mean()), float(m[across].mean())
    out["ratio"] = out["cos_within"] / max(out["cos_across"], 1e-12)
    out["spectrum_ratio"] = out["spectrum_within"] / max(out["spectrum_across"], 1e-12)
    out["orientation_gap"] = out["orientation_within"] - out["orientation_across"]
    return out


def relabel_control(filters: np.ndarray, parents, draws: int = 200, seed: int = 0) -> dict:
    """Within / across-branch filter similarity as laid out (`observed`: branch_similarity's |cos| and
    orientation numbers plus the power-spectrum similarity), next to the same statistics with the filters
    dealt to the nodes at random (`draws` permutations): for the |cos| ratio, the spectrum ratio and the
    orientation gap, the shuffled mean, standard deviation, 95th percentile and the share of draws reaching
    the observed value (a one-sided permutation p-value)."""
    filters = np.asarray(filters)
    sims = similarity_matrices(filters)
    branch = same_branch(parents)
    observed = {**branch_similarity(filters, parents), **within_across(sims, branch)}
    rng = np.random.default_rng(seed)
    shuffled = []
    for _ in range(draws):
        perm = rng.permutation(len(filters))
        shuffled.append(within_across({k: v[np.ix_(perm, perm)] for k, v in sims.items()}, branch))
    out = {"observed": observed, "draws": draws}
    for key in ("ratio", "spectrum_ratio", "orientation_gap"):
        v = np.asarray([d[key] for d in shuffled])
        out.update({f"shuffled_{key}_mean": float(v.mean()), f"shuffled_{key}_std": float(v.std()),
                    f"shuffled_{key}_p95": float(np.quantile(v, 0.95)),
                    f"{key}_p_value": float((1 + (v >= observed[key]).sum()) / (1 + draws))})
    out["p_value"] = out["ratio_p_value"]
    return out


def grid_shuffle_control(filters: np.ndarray, grid: tuple[int, int], wrap: bool, draws: int = 50, seed: int = 0) -> dict:
    """Map smoothness as laid out, next to the smoothness with the units placed on the grid at random."""
    omap = orientation_map(np.asarray(filters), grid)
    rng = np.random.default_rng(seed)
    theta = omap.theta.ravel()
    shuffled = np.array([smoothness(theta[rng.permutation(theta.size)].reshape(grid), wrap=wrap) for _ in range(draws)])
    return {"observed": smoothness(omap.theta, wrap=wrap), "shuffled_mean": float(shuffled.mean()),
            "shuffled_std": float(shuffled.std()), "draws": draws}
