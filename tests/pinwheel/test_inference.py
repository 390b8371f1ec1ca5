"""ISTA / FISTA against scikit-learn's Lasso, and LISTA's ISTA initialisation and gradients."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import Lasso

from pinwheel import inference

torch.set_num_threads(1)


def lasso_problem(seed=0, n=30, m=20, batch=3):
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(n, m))
    W /= np.linalg.norm(W, axis=0)
    X = rng.normal(size=(batch, n))
    return W, X


@pytest.mark.parametrize("nonneg", [False, True])
def test_fista_matches_sklearn_lasso(nonneg):
    W, X = lasso_problem()
    lam = 0.3
    z = inference.fista(torch.tensor(X), torch.tensor(W), lam, 3000, nonneg=nonneg).numpy()
    n = W.shape[0]
    for b in range(X.shape[0]):
        # Lasso: (1/(2n))‖y − Xw‖² + α‖w‖₁ = (1/n)·[½‖y − Xw‖² + nα‖w‖₁]  ⇒  α = λ/n
        ref = Lasso(alpha=lam / n, fit_intercept=False, positive=nonneg, tol=1e-12, max_iter=200_000)
        ref.fit(W, X[b])
        w = ref.coef_
        assert np.count_nonzero(w) > 2  # a non-trivial problem: several atoms active
        np.testing.assert_allclose(z[b], w, rtol=1e-4, atol=1e-4 * np.abs(w).max())


def test_ista_converges_to_the_same_point_and_fista_is_faster():
    W, X = lasso_problem(seed=1)
    x, Wt = torch.tensor(X), torch.tensor(W)
    opt = inference.energy(x, Wt, inference.fista(x, Wt, 0.2, 5000), 0.2)
    e_ista = inference.energy(x, Wt, inference.ista(x, Wt, 0.2, 30), 0.2)
    e_fista = inference.energy(x, Wt, inference.fista(x, Wt, 0.2, 30), 0.2)
    assert (e_fista - opt).sum() < (e_ista - opt).sum()
    torch.testing.assert_close(inference.ista(x, Wt, 0.2, 20000), inference.fista(x, Wt, 0.2, 5000),
                               rtol=1e-5, atol=1e-6)


def test_shrink_is_the_l1_prox():
    u = torch.tensor([-2.0, -0.5, 0.0, 0.3, 1.5])
    assert inference.shrink(u, 1.0).tolist() == [-1.0, 0.0, 0.0, 0.0, 0.5]
    assert inference.shrink_nonneg(u, 1.0).tolist() == [0.0, 0.0, 0.0, 0.0, 0.5]


@pytest.mark.parametrize("nonneg", [False, True])
def test_lista_at_initialisation_is_ista(nonneg):
    W, X = lasso_problem(seed=2)
    x, Wt = torch.tensor(X), torch.tensor(W)
    for T in (1, 2, 7):
        lista = inference.LISTA(Wt, 0.25, T, nonneg=nonneg).double()
        with torch.no_grad():
            torch.testing.assert_close(lista(x), inference.ista(x, Wt, 0.25, T, nonneg=nonneg))


def test_lista_gradients_match_finite_differences():
    W, X = lasso_problem(seed=3, n=6, m=5, batch=2)
    lista = inference.LISTA(torch.tensor(W), 0.05, 3).double()
    x = torch.tensor(X)

    def f(W_e, S, theta):  # the "energy" training loss of LISTA, through the unrolled steps
        b = x @ W_e.T
        z = inference.shrink(b, theta)
        for _ in range(2):
            z = inference.shrink(b + z @ S.T, theta)
        return inference.energy(x, torch.tensor(W), z, 0.05).mean()

    params = tuple(p.detach().clone().requires_grad_(True) for p in (lista.W_e, lista.S, lista.theta))
    assert torch.autograd.gradcheck(f, params, eps=1e-6, atol=1e-5)
    loss = inference.energy(x, torch.tensor(W), lista(x), 0.05).mean()
    loss.backward()
    torch.testing.assert_close(lista.W_e.grad, torch.autograd.grad(f(*params), params[0])[0])


def test_iterations_to_match_counts_fista_steps():
    W, X = lasso_problem(seed=4)
    x, Wt = torch.tensor(X), torch.tensor(W)
    target = inference.energy(x, Wt, inference.fista(x, Wt, 0.2, 10), 0.2).mean()
    k = inference.iterations_to_match(target, x, Wt, 0.2, 100, tolerance=0.0)
    assert k is not None and k <= 10
    assert inference.iterations_to_match(torch.tensor(-1.0), x, Wt, 0.2, 5) is None
