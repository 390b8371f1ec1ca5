"""Online dictionary learning (pinwheel/dictionary.py) and the sparse-coding form's `online` update.

References: the statistics against their direct sums and scikit-learn's own update; each column of the
block-coordinate sweep against a brute-force constrained minimisation (SLSQP); the batched FISTA against
inference.proximal_iterates; the objective and α against scikit-learn's definition (dict_learning's cost,
sparse_encode's codes).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from pydantic import ValidationError
from scipy.optimize import minimize

from bench.step_check import HostSyncGuard
from pinwheel import dictionary, groups, inference
from pinwheel.configs import RunConfig
from pinwheel.configs.group_sparse import GroupSparseConfig
from pinwheel.data import Dataset
from pinwheel.models import build_model


def problem(n=6, m=5, b=12, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(n, m, generator=g, dtype=dtype)
    W /= W.norm(dim=0)
    x = torch.randn(b, n, generator=g, dtype=dtype)
    z = inference.fista(x, W, 0.3, 200)
    return W, x, z


def test_statistics_are_the_forgotten_sums_and_scikit_learns():
    from sklearn.decomposition import MiniBatchDictionaryLearning

    n, m, b = 6, 5, 4
    A, B = torch.zeros(m, m, dtype=torch.float64), torch.zeros(n, m, dtype=torch.float64)
    sk = MiniBatchDictionaryLearning(n_components=m, batch_size=b)
    sk._A, sk._B = np.zeros((m, m)), np.zeros((n, m))
    batches = [problem(n, m, b, seed=s)[1:] for s in range(7)]
    betas = [dictionary.forgetting(t, b) for t in range(7)]
    for t, (x, z) in enumerate(batches):
        dictionary.accumulate_(A, B, x, z, betas[t])
        sk._update_inner_stats(x.numpy(), z.numpy(), b, t)
    weight = [np.prod(betas[t + 1:]) for t in range(7)]  # a batch is forgotten by every later β
    direct_A = sum(w * z.T @ z / b for w, (x, z) in zip(weight, batches))
    direct_B = sum(w * x.T @ z / b for w, (x, z) in zip(weight, batches))
    torch.testing.assert_close(A, direct_A)
    torch.testing.assert_close(B, direct_B)
    np.testing.assert_allclose(A.numpy(), sk._A, rtol=1e-12)
    np.testing.assert_allclose(B.numpy(), sk._B, rtol=1e-12)
    assert 0 < betas[0] < betas[3] < betas[6] < 1  # older batches forgotten, less and less: towards a running mean


@pytest.mark.parametrize("rho", [0.0, 1.0, 4.0])
def test_forgetting_rho_weighs_batch_s_as_s_to_the_rho(rho):
    n, m, b, T = 5, 4, 3, 9
    A, B = torch.zeros(m, m, dtype=torch.float64), torch.zeros(n, m, dtype=torch.float64)
    batches = [problem(n, m, b, seed=s)[1:] for s in range(T)]
    for t, (x, z) in enumerate(batches):
        dictionary.accumulate_(A, B, x, z, dictionary.forgetting(t, b, rho))
    scale = T**rho  # the newest batch keeps weight 1: batch s has ((s + 1)/T)^ρ
    torch.testing.assert_close(A * scale, sum((s + 1) ** rho * z.T @ z / b for s, (x, z) in enumerate(batches)))
    torch.testing.assert_close(B * scale, sum((s + 1) ** rho * x.T @ z / b for s, (x, z) in enumerate(batches)))


def surrogate(W, A, B):
    return 0.5 * np.trace(W.T @ W @ A) - np.trace(W.T @ B)


@pytest.mark.parametrize("loop", ["numpy", "torch"])
@pytest.mark.parametrize("scale", [0.3, 30.0])  # small statistics: columns inside the ball; large: on its surface
def test_each_column_of_the_sweep_solves_its_subproblem_exactly(loop, scale):
    W, x, z = problem(n=6, m=5, b=40)
    A, B = torch.zeros(5, 5, dtype=torch.float64), torch.zeros(6, 5, dtype=torch.float64)
    g = torch.Generator().manual_seed(1)
    dictionary.accumulate_(A, B, x, z, 0.0)
    B = B * scale + torch.randn(6, 5, generator=g, dtype=torch.float64)  # off the current W: columns move
    before = W.clone()
    dictionary.update_columns_(W, A, B, loop=loop)
    An, Bn, Wn = A.numpy(), B.numpy(), W.numpy()
    for k in range(5):  # Gauss–Seidel: columns before k already updated, after k not yet
        current = np.concatenate([Wn[:, :k], before.numpy()[:, k:]], axis=1)

        def f(w, k=k, current=current):
            c = current.copy()
            c[:, k] = w
            return surrogate(c, An, Bn)

        best = min((minimize(f, start, method="SLSQP", tol=1e-14,
                             constraints=[{"type": "ineq", "fun": lambda w: 1.0 - w @ w}]) for start in
                    (current[:, k], np.zeros(6), -current[:, k])), key=lambda r: r.fun)
        assert f(Wn[:, k]) <= best.fun + 1e-7 * (1 + abs(best.fun))  # SLSQP may step 1e-9 outside the ball
        np.testing.assert_allclose(Wn[:, k], best.x, atol=1e-5)
        assert np.linalg.norm(Wn[:, k]) <= 1 + 1e-12
    assert surrogate(Wn, An, Bn) < surrogate(before.numpy(), An, Bn)


def test_the_numpy_and_torch_sweeps_agree_and_skip_unused_atoms():
    W, x, z = problem(n=8, m=6, b=30)
    z[:, 2] = 0  # atom 2 never used: A_22 = 0, its column stays
    A, B = torch.zeros(6, 6, dtype=torch.float64), torch.zeros(8, 6, dtype=torch.float64)
    dictionary.accumulate_(A, B, x, z, 0.0)
    a, b = W.clone(), W.clone()
    dictionary.update_columns_(a, A, B, loop="numpy")
    dictionary.update_columns_(b, A, B, loop="torch")
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(a[:, 2], W[:, 2])
    assert not torch.allclose(a[:, 0], W[:, 0])


def test_unused_atoms_restart_from_the_worst_reconstructed_patches():
    W, x, z = problem(n=8, m=6, b=10)
    A = z.T @ z / 10
    A[1, 1] = A[4, 4] = 0.0
    before = W.clone()
    restarted = dictionary.restart_unused_(W, A, x, z)
    assert restarted.tolist() == [False, True, False, False, True, False]
    worst = (x - z @ before.T).pow(2).sum(dim=1).argsort(descending=True)
    for atom, patch in ((1, worst[0]), (4, worst[1])):
        torch.testing.assert_close(W[:, atom], x[patch] / x[patch].norm())
    keep = [0, 2, 3, 5]
    torch.testing.assert_close(W[:, keep], before[:, keep])


@pytest.mark.parametrize("which", ["l1", "tree", "blocks"])
def test_batched_fista_has_the_iterates_of_proximal_gradient(which):
    W, x, _ = problem(n=10, m=15, b=7)
    L = inference.lipschitz(W)
    for steps in (1, 2, 5, 40):
        if which == "l1":
            ours = dictionary.fista_codes(x, W, steps, L, lam=0.4)
            ref = inference.fista(x, W, 0.4, steps, L=L)
        else:
            structure = groups.tree(2, 4) if which == "tree" else groups.blocks_1d(15, 3)
            structure.weights = structure.weights.double()
            prox = lambda v, t, s=structure: s.prox(v, 0.4 * t)  # noqa: E731
            ours = dictionary.fista_codes(x, W, steps, L, prox=prox)
            ref = inference.proximal_gradient(x, W, prox, steps, L=L)
        torch.testing.assert_close(ours, ref, atol=1e-10, rtol=1e-10)
    tensor_L = dictionary.fista_codes(x, W, 40, torch.tensor(L, dtype=W.dtype), lam=0.4)  # the on-device threshold
    torch.testing.assert_close(tensor_L, inference.fista(x, W, 0.4, 40, L=L), atol=1e-10, rtol=1e-10)


def test_objective_and_alpha_are_scikit_learns():
    """½‖x − D z‖² + α‖z‖₁ per sample, atoms as unit-norm rows of D (scikit-learn) = columns of W_d (Pinwheel)."""
    from sklearn.decomposition import dict_learning, sparse_encode

    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 8))
    alpha = 0.7
    code, atoms, errors = dict_learning(X, 5, alpha=alpha, max_iter=4, method="cd", random_state=0, tol=0)
    W = torch.from_numpy(atoms.T.copy())  # (n, m): columns are scikit-learn's rows
    ours = float(inference.energy(torch.from_numpy(X), W, torch.from_numpy(code), alpha).mean())
    assert ours * len(X) == pytest.approx(errors[-1], rel=1e-12)
    np.testing.assert_allclose(np.linalg.norm(atoms, axis=1), 1.0, rtol=1e-9)
    # the same α: FISTA's minimiser is scikit-learn's Lasso code (which scales α by n_features inside)
    reference = sparse_encode(X, atoms, algorithm="lasso_cd", alpha=alpha, max_iter=100_000)
    fista = inference.fista(torch.from_numpy(X), W, alpha, 3000).numpy()
    np.testing.assert_allclose(fista, reference, atol=1e-5)


def online_config(**model) -> RunConfig:
    return RunConfig.model_validate({
        "model": {"kind": "group_sparse", "form": "sparse_coding", "units": 24, "lam": 0.5, "inference_steps": 20,
                  "groups": {"kind": "blocks_1d", "size": 1}, "dictionary_update": "online", **model},
        "data": {"kind": "natural_patches", "patch_size": 6}, "train": {"batch_size": 32}})


def patches(count=2000, seed=0) -> Dataset:
    basis = torch.randn(8, 36, generator=torch.Generator().manual_seed(0))  # a few directions: learnable atoms
    g = torch.Generator().manual_seed(seed + 1)
    codes = torch.randn(count, 8, generator=g) * (torch.rand(count, 8, generator=g) < 0.3)
    return Dataset(codes @ basis + 0.05 * torch.randn(count, 36, generator=g), None, (6, 6))


def train(model, data, steps, start=0, seed=0):
    g = torch.Generator().manual_seed(seed)
    opt = model.make_optimizer(1e-3)
    for step in range(start, start + steps):
        model.train_step(data.batch(32, g)[0], None, step, opt)


def test_online_update_learns_and_resumes_exactly():
    cfg, data = online_config(), patches()
    held = patches(500, seed=1).x

    def objective(model):
        W = model.W_d.detach()
        return float(inference.energy(held, W, inference.fista(held, W, 0.5, 300), 0.5).mean())

    model = build_model(cfg.model, data, torch.Generator().manual_seed(0))
    start = objective(model)
    assert {"stats_A", "stats_B"} <= set(model.state_dict())
    train(model, data, 60)
    learned = objective(model)
    assert learned < 0.85 * start
    # scikit-learn's online learner on the same 60 batches gets no lower
    from sklearn.decomposition import MiniBatchDictionaryLearning

    sk = MiniBatchDictionaryLearning(n_components=24, alpha=0.5, batch_size=32, fit_algorithm="cd", random_state=0)
    g = torch.Generator().manual_seed(0)
    for _ in range(60):
        sk.partial_fit(data.batch(32, g)[0].double().numpy())
    reference = build_model(cfg.model, data, torch.Generator().manual_seed(0))
    reference.W_d.data = torch.from_numpy(sk.components_.T.astype(np.float32))
    assert learned <= 1.02 * objective(reference)
    assert model.W_d.norm(dim=0).max() <= 1 + 1e-5
    # a checkpoint holds the statistics: ten more steps after a reload are the same ten steps
    again = build_model(cfg.model, data, torch.Generator().manual_seed(5))
    again.load_state_dict(model.state_dict())
    train(model, data, 10, start=60, seed=7)
    train(again, data, 10, start=60, seed=7)
    torch.testing.assert_close(again.W_d, model.W_d)


def test_online_update_on_the_meta_device_needs_no_host_sync():
    cfg, data = online_config(groups={"kind": "blocks_1d", "size": 4}), patches(200)
    model = build_model(cfg.model, data, torch.Generator().manual_seed(0)).to("meta")
    data.to("meta")
    g, opt = torch.Generator().manual_seed(0), model.make_optimizer(1e-3)
    model.train_step(data.batch(8, g)[0], None, 0, opt)  # first step unguarded: per-device tables
    with HostSyncGuard() as guard:
        terms = model.train_step(data.batch(8, g)[0], None, 1, opt)
    assert guard.found == [] and terms["loss"].device.type == "meta"


def test_online_needs_the_sparse_coding_form():
    with pytest.raises(ValidationError, match="dictionary_update"):
        GroupSparseConfig(dictionary_update="online")
    with pytest.raises(ValidationError, match="dictionary_update"):
        GroupSparseConfig(form="sparse_coding", dictionary_update="sgd")
    assert GroupSparseConfig().dictionary_update == "adam"


def test_plain_l1_terms_are_the_group_terms_with_singleton_groups():
    cfg, data = online_config(), patches(200)
    model = build_model(cfg.model, data, torch.Generator().manual_seed(0))
    x = data.x[:64]
    z = model.encode(x, 0)
    assert model.plain_l1 and (z == 0).any() and (z != 0).any()
    fast = model._terms(x, z, 0)
    model.plain_l1 = False  # the general path: products with group_weights = I
    general = model._terms(x, z, 0)
    torch.testing.assert_close(fast[0], general[0])
    for name in general[1]:
        torch.testing.assert_close(fast[1][name], general[1][name])
