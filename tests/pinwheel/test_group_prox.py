"""Group-sparsity proximal operators against brute-force minimisation and the composition rule."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.optimize import minimize

from pinwheel import groups

torch.set_num_threads(1)


def brute_prox(u: np.ndarray, w: np.ndarray, tau: float) -> np.ndarray:
    """The prox by a generic solver (SLSQP) on the smooth dual problem, independent of the code under test:
    min_v ½‖u − Σ_j D_j v_j‖²  s.t. ‖v_j‖² ≤ τ²  (D_j = diag(sqrt(w_j)), v_j supported on group j);
    the prox is p = u − Σ_j D_j v_j (unique even where v is not)."""
    G, m = w.shape
    sw = np.sqrt(w)
    mask = (w > 0).ravel()
    k = int(mask.sum())

    def full(x):
        v = np.zeros(G * m)
        v[mask] = x
        return v.reshape(G, m)

    def resid(x):
        return u - (sw * full(x)).sum(axis=0)

    obj = lambda x: 0.5 * np.sum(resid(x) ** 2)
    jac = lambda x: (-(sw * resid(x)[None, :])).ravel()[mask]
    rows = [np.flatnonzero(mask.reshape(G, m)[j].repeat(1)) for j in range(G)]
    offsets = np.cumsum([0] + [len(r) for r in rows])
    cons = [{"type": "ineq", "fun": (lambda x, j=j: tau**2 - np.sum(x[offsets[j]:offsets[j + 1]] ** 2)),
             "jac": (lambda x, j=j: np.concatenate([np.zeros(offsets[j]), -2 * x[offsets[j]:offsets[j + 1]],
                                                    np.zeros(k - offsets[j + 1])]))} for j in range(G)]
    res = minimize(obj, np.zeros(k), jac=jac, constraints=cons, method="SLSQP",
                   options={"ftol": 1e-12, "maxiter": 5000})
    assert res.success, res.message
    return resid(res.x)


def objective(p, u, w, tau):
    return 0.5 * np.sum((p - u) ** 2) + tau * np.sum(np.sqrt(w @ p**2))


def check_against_brute(prox_fn, w: np.ndarray, tau: float, seed: int):
    rng = np.random.default_rng(seed)
    U = rng.normal(size=(4, w.shape[1]))
    P = prox_fn(torch.tensor(U)).numpy()
    for u, p in zip(U, P):
        ref = brute_prox(u, w, tau)
        # the prox is unique (strongly convex): values agree, and so do the points
        assert objective(p, u, w, tau) <= objective(ref, u, w, tau) + 1e-7
        np.testing.assert_allclose(p, ref, atol=2e-4)


def test_block_prox_vs_brute_force():
    g = groups.blocks_1d(6, 2)
    w = g.weights.double()
    check_against_brute(lambda u: groups.block_prox(u, w, 0.8), w.numpy(), 0.8, seed=0)
    # a zeroed block: ‖u_g‖ ≤ τ switches the whole group off
    out = groups.block_prox(torch.tensor([[0.3, 0.4, 3.0, 4.0]], dtype=torch.double), groups.blocks_1d(4, 2).weights.double(), 1.0)
    torch.testing.assert_close(out, torch.tensor([[0.0, 0.0, 2.4, 3.2]], dtype=torch.double))


def test_tree_prox_vs_brute_force():
    g = groups.tree(branching=2, depth=3)
    check_against_brute(lambda u: g.prox(u, 0.5), g.weights.double().numpy(), 0.5, seed=1)


def test_tree_prox_is_exactly_the_leaves_to_root_composition():
    g = groups.tree(branching=3, depth=3)  # 13 nodes
    parents = g.parents
    depth = np.zeros(len(parents), dtype=int)
    for i in range(1, len(parents)):
        depth[i] = depth[parents[i]] + 1
    rng = np.random.default_rng(5)
    u = rng.normal(size=(3, len(parents)))
    lam = 0.6
    expected = u.copy()
    for node in sorted(range(len(parents)), key=lambda i: -depth[i]):  # children before parents
        sub = np.flatnonzero(g.weights.numpy()[node] > 0)  # the node's subtree
        for b in range(len(u)):
            norm = np.linalg.norm(expected[b, sub])
            expected[b, sub] *= max(0.0, 1 - lam / norm) if norm > 0 else 0.0
    out = g.prox(torch.tensor(u), lam).numpy()
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)
    assert (out == 0).any()  # the rule prunes some subtrees


def test_nested_levels_recognises_blocks_and_trees_but_not_overlaps():
    assert len(groups.nested_levels(groups.blocks_1d(8, 4).weights.numpy())) == 1
    assert len(groups.nested_levels(groups.tree(2, 4).weights.numpy())) == 4
    assert groups.nested_levels(groups.windows_1d(8, 4, 2).weights.numpy()) is False
    assert groups.nested_levels(groups.torus_2d(4, 2, 1).weights.numpy()) is False  # overlapping pools
    assert groups.nested_levels(groups.torus_2d(6, 3, 3, sigma=1.0).weights.numpy()) is False  # non-uniform weights


@pytest.mark.parametrize("structure", ["windows", "gaussian_torus"])
def test_overlap_prox_reaches_the_optimum(structure):
    g = groups.windows_1d(6, 3, 1) if structure == "windows" else groups.torus_2d(3, 2, 1, sigma=0.8)
    w = g.weights.double()
    tau = 0.4
    rng = np.random.default_rng(2)
    u = torch.tensor(rng.normal(size=(4, w.shape[1])))
    p, v = groups.overlap_prox(u, w, tau, iters=4000, return_dual=True)
    gap = groups.duality_gap(u, w, tau, v)
    assert (gap >= -1e-9).all() and gap.max() < 1e-8  # optimality certificate
    check_against_brute(lambda x: g.prox(x, tau, overlap_iters=4000), w.numpy(), tau, seed=3)
    # the dual iterates are feasible and the gap shrinks as iterations grow
    _, v10 = groups.overlap_prox(u, w, tau, iters=10, return_dual=True)
    assert (v10.pow(2).sum(-1).sqrt() <= tau + 1e-12).all()
    assert groups.duality_gap(u, w, tau, v10).sum() > gap.sum()


def test_nonnegative_prox_is_prox_of_the_positive_part():
    g = groups.blocks_1d(4, 2)
    u = torch.tensor([[-1.0, 2.0, -3.0, -0.5]], dtype=torch.double)
    out = g.prox(u, 0.5, nonneg=True)
    assert (out >= 0).all() and out[0, 0] == 0 and out[0, 2:].abs().sum() == 0 and out[0, 1] == 1.5
