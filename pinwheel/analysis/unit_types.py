"""Categorical vs part units of a trained DrSAE (docs/models.md §2; Rolfe & LeCun 2013, §4).

Per hidden unit i, from the trajectories z¹…z^T on labelled inputs and the decoder D:
- selectivity  s_i = max_c a_ic / Σ_c a_ic, a_ic = mean z_i^T over examples of class c
                (0.1 = indifferent to the class, 1 = active for one class only);
- prototype    p_i = max_c cos(D[:, i], μ_c − μ̄), μ_c the class-mean input, μ̄ their mean
                (does the decoder column look like a whole digit of one class?);
- growth       g_i = 1 − Σ_x z_i¹ / Σ_x z_i^T, the share of the final activity built up by the
                recurrence after the first step (0: driven directly by the input, 1: only by S).
- lateral share  ℓ_i = Σ [z_i^t > 0]·(Σ_{j≠i} S_ij z_j^{t−1})₊ / Σ [z_i^t > 0]·((E x)_i₊ + (Σ_{j≠i} S_ij z_j^{t−1})₊),
                sums over inputs and t = 2…T: the share of the unit's excitation, while it is active, that
                comes from other units rather than from the input (S_ii z_i, self-integration, excluded).
                Growth counts self-integration too; ℓ isolates "built up through interactions".
A unit is *categorical* when it is class-selective and its activity builds up over the iterations
(s ≥ 0.5 and g ≥ 0.5), or class-selective with a prototype-like decoder column (s ≥ 0.5, p ≥ 0.5);
other live units are *part* units; units never active on the inputs are *dead*.
"""
from __future__ import annotations

import numpy as np
import torch

SELECTIVE, GROWING, PROTOTYPE = 0.5, 0.5, 0.5


@torch.no_grad()
def unit_statistics(model, x: torch.Tensor, y: torch.Tensor, n_classes: int = 10) -> dict[str, np.ndarray]:
    traj = model.trajectory(x)  # T × (N, m)
    z1, zT = traj[0].cpu().double().numpy(), traj[-1].cpu().double().numpy()
    labels = y.cpu().numpy()
    a = np.stack([zT[labels == c].mean(axis=0) if (labels == c).any() else np.zeros(zT.shape[1])
                  for c in range(n_classes)])  # (classes, m)
    total = a.sum(axis=0)
    live = total > 0
    selectivity = np.where(live, a.max(axis=0) / np.where(live, total, 1), 0.0)
    xs = x.cpu().double().numpy()
    mu = np.stack([xs[labels == c].mean(axis=0) for c in range(n_classes) if (labels == c).any()])
    mu = mu - mu.mean(axis=0)
    D = model.D.detach().cpu().double().numpy()  # (n, m)
    cos = (mu @ D) / (np.linalg.norm(mu, axis=1)[:, None] * np.linalg.norm(D, axis=0)[None, :] + 1e-12)
    prototype = cos.max(axis=0)
    s1, sT = z1.sum(axis=0), zT.sum(axis=0)
    growth = np.where(sT > 0, 1 - s1 / np.where(sT > 0, sT, 1), 0.0)
    S = model.S.detach()
    S_off = S - torch.diag(torch.diag(S))
    drive = (x @ model.E.detach().T).clamp_min(0)  # (N, m): (E x)₊
    from_input = from_units = torch.zeros(S.shape[0], dtype=S.dtype, device=S.device)
    for t in range(1, len(traj)):
        active = (traj[t] > 0).to(S.dtype)
        from_input = from_input + (drive * active).sum(0)
        from_units = from_units + ((traj[t - 1] @ S_off.T).clamp_min(0) * active).sum(0)
    total_exc = (from_input + from_units).cpu().double().numpy()
    lateral = np.where(total_exc > 0, from_units.cpu().double().numpy() / np.where(total_exc > 0, total_exc, 1), 0.0)
    return {"selectivity": selectivity, "prototype": prototype, "growth": growth, "lateral_share": lateral, "live": live,
            "preferred_class": a.argmax(axis=0), "mean_activity": zT.mean(axis=0)}


def label_units(stats: dict[str, np.ndarray]) -> np.ndarray:
    """'categorical', 'part' or 'dead' per unit (rules in the module docstring)."""
    selective = stats["selectivity"] >= SELECTIVE
    categorical = selective & ((stats["growth"] >= GROWING) | (stats["prototype"] >= PROTOTYPE))
    return np.where(~stats["live"], "dead", np.where(categorical, "categorical", "part"))


def split(model, x: torch.Tensor, y: torch.Tensor, n_classes: int = 10) -> dict:
    """The per-unit statistics, labels, and the counts of each kind."""
    stats = unit_statistics(model, x, y, n_classes)
    labels = label_units(stats)
    counts = {k: int((labels == k).sum()) for k in ("categorical", "part", "dead")}
    means = {f"{k}_{name}": float(stats[name][labels == k].mean()) if counts[k] else float("nan")
             for k in ("categorical", "part") for name in ("selectivity", "prototype", "growth", "lateral_share")}
    return {"labels": labels, "stats": stats, "counts": counts, "means": means}
