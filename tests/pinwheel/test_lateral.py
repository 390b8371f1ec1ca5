"""pinwheel/models/lateral.py: lateral inhibition's inference, the S projection and its masks."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.optimize import minimize

from pinwheel import groups
from pinwheel.configs.lateral import LateralConfig
from pinwheel.models.lateral import LateralInhibition, SProjection, grid_mask, tree_mask

torch.set_num_threads(1)


# ---- lateral inhibition ---------------------------------------------------------------------------

def small_lateral(nonnegative: bool, seed: int) -> LateralInhibition:
    cfg = LateralConfig(units=13, lam=0.2, mask={"kind": "tree", "branching": 3, "depth": 3}, beta=0.2,
                        row_sum=0.6, inference_steps=2000, nonnegative=nonnegative)
    model = LateralInhibition(cfg, (4, 5), torch.Generator().manual_seed(seed))
    model.double()
    return model


@pytest.mark.parametrize("nonnegative, seed", [(True, 0), (False, 1), (False, 2)])
def test_lateral_inference_reaches_the_minimum_of_its_energy(nonnegative, seed):
    model = small_lateral(nonnegative, seed)
    rng = np.random.default_rng(seed)
    x = torch.tensor(rng.normal(size=(1, 20)))
    z = model.infer(x)
    d, s, lam = model.W_d.detach().numpy(), model.S.numpy(), model.config.lam
    m = d.shape[1]

    def energy(v):  # v = (z⁺, z⁻) ≥ 0, z = z⁺ − z⁻, |z| = z⁺ + z⁻ at the optimum
        zp, zn = v[:m], v[m:]
        a, r = zp + zn, d @ (zp - zn) - x.numpy()[0]
        e = 0.5 * r @ r + lam * a.sum() + a @ s @ a
        g_a = lam + 2 * s @ a
        return e, np.concatenate([d.T @ r + g_a, -d.T @ r + g_a])

    bounds = [(0, None)] * m + [(0, 0 if nonnegative else None)] * m
    best = min((minimize(energy, rng.uniform(0, 0.5, 2 * m) * np.array([1] * m + [0 if nonnegative else 1] * m),
                         jac=True, method="L-BFGS-B", bounds=bounds, options={"ftol": 1e-14, "gtol": 1e-10})
                for _ in range(5)), key=lambda r: r.fun)
    ours = float(model.energy(x, z)[0])
    assert ours <= best.fun + 1e-6
    np.testing.assert_allclose(z.numpy()[0], best.x[:m] - best.x[m:], atol=1e-3)


def test_s_projection_satisfies_every_constraint():
    rng = np.random.default_rng(0)
    mask = tree_mask(2, 4)
    proj = SProjection(mask, beta=0.1, row_sum=0.4)
    s = proj(rng.normal(size=mask.shape) * 0.3 + 0.05)
    assert np.allclose(s, s.T, atol=1e-12)
    assert s.min() >= 0 and s.max() <= 0.1 + 1e-12
    assert (np.diag(s) == 0).all() and (s[~mask] == 0).all()
    rows = s.sum(axis=1)
    np.testing.assert_allclose(rows[proj.active], 0.4, atol=1e-6)
    assert (rows[~proj.active] == 0).all() and (~proj.active).sum() == 1  # only the root has no one to inhibit
    # it is the nearest such matrix: a feasible point already in the set is left where it is
    np.testing.assert_allclose(proj(s), s, atol=1e-6)


def test_tree_mask_is_zero_exactly_on_ancestor_descendant_pairs():
    parents = groups.tree_parents(3, 3)
    mask = tree_mask(3, 3)

    def ancestors(i):
        out = set()
        while parents[i] >= 0:
            i = parents[i]
            out.add(i)
        return out

    for i in range(len(parents)):
        for j in range(len(parents)):
            on_branch = i == j or i in ancestors(j) or j in ancestors(i)
            assert mask[i, j] == (not on_branch), (i, j)


def test_grid_mask_spares_neighbours_on_the_torus():
    mask = grid_mask(5, 1.5, wrap=True)
    near = np.flatnonzero(~mask[0])  # unit (0, 0): itself, 4 edge and 4 diagonal neighbours, wrapped
    assert sorted(near.tolist()) == sorted([0, 1, 4, 5, 20, 6, 9, 21, 24])
