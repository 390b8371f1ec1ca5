"""LISTA's variants (untied, LISTA-CP, ALISTA) against independent references, and iterations-to-accuracy."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from pinwheel import inference
from pinwheel.configs import RunConfig, deep_merge, preset_by_id
from pinwheel.train import train
from tests.conftest import Recorder


def problem(n=6, m=10, batch=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(n, m, generator=g, dtype=torch.float64)
    W /= W.norm(dim=0, keepdim=True)
    return W, torch.randn(batch, n, generator=g, dtype=torch.float64)


@pytest.mark.parametrize("steps", [1, 2, 4])
def test_at_ista_initialisation_every_variant_is_ista(steps):
    W, x = problem()
    lam = 0.3
    want = inference.ista(x, W, lam, steps)
    for enc in (inference.LISTA(W, lam, steps), inference.LISTA(W, lam, steps, tied=False),
                inference.CoupledLISTA(W, lam, steps, weights="coupled")):
        torch.testing.assert_close(enc(x).detach(), want)


def numpy_shrink_support(u, theta, keep):
    """Row by row: the round(keep·m) largest |u_i| pass, the rest are soft-thresholded."""
    out = np.sign(u) * np.maximum(np.abs(u) - theta, 0)
    k = max(1, int(round(keep * u.shape[1])))
    for b in range(u.shape[0]):
        top = np.argsort(-np.abs(u[b]))[:k]
        out[b, top] = u[b, top]
    return out


@pytest.mark.parametrize("ridge", [0.0, 0.7])
def test_analytic_weight_solves_its_constrained_problem(ridge):
    W, _ = problem(n=5, m=9)
    A = inference.analytic_weight(W, ridge).numpy()
    D = W.numpy()
    np.testing.assert_allclose(np.diag(A.T @ D), 1.0, atol=1e-10)
    for i in range(D.shape[1]):  # KKT system of min ‖Dᵀw‖² + ρ‖w‖² s.t. d_iᵀw = 1, solved directly
        kkt = np.block([[2 * (D @ D.T + ridge * np.eye(5)), D[:, [i]]], [D[:, [i]].T, np.zeros((1, 1))]])
        w = np.linalg.solve(kkt, np.r_[np.zeros(5), 1.0])[:5]
        np.testing.assert_allclose(A[:, i], w, atol=1e-9)
    rng = np.random.default_rng(0)
    for _ in range(20):  # feasible perturbations only increase the objective
        delta = rng.normal(size=A.shape)
        delta -= D * (np.sum(delta * D, axis=0) / np.sum(D * D, axis=0))  # keeps diag(WᵀD) = 1
        objective = lambda w: np.linalg.norm(w.T @ D) ** 2 + ridge * np.linalg.norm(w) ** 2  # noqa: E731
        assert objective(A + 1e-3 * delta) > objective(A)
    with pytest.raises(ValueError, match="W_d"):
        inference.analytic_weight(torch.ones(4, 6, dtype=torch.float64))


@pytest.mark.parametrize("weights", ["coupled", "analytic"])
def test_one_layer_matches_a_numpy_step_with_support_selection(weights):
    W, x = problem(m=20)
    enc = inference.CoupledLISTA(W, 0.2, 3, weights=weights, support=0.05)
    with torch.no_grad():  # move away from the initialisation so every parameter matters
        for p in enc.parameters():
            p.add_(0.01 * torch.randn(p.shape, generator=torch.Generator().manual_seed(1), dtype=p.dtype))
    z = np.zeros((x.shape[0], 20))
    D, X = W.numpy(), x.numpy()
    for k in range(3):
        if weights == "coupled":
            u = z + (X - z @ D.T) @ enc.W[k].detach().numpy()
        else:
            u = z + float(enc.gamma[k].detach()) * (X - z @ D.T) @ enc.W_analytic.numpy()
        z = numpy_shrink_support(u, enc.theta[k].detach().numpy(), min((k + 1) * 0.05, 0.5))
        np.testing.assert_allclose(enc(x, steps=k + 1).detach().numpy(), z, atol=1e-12)


@pytest.mark.parametrize("weights", ["coupled", "analytic"])
def test_learned_parameters_get_the_right_gradients(weights):
    W, x = problem(n=4, m=7, batch=3)
    enc = inference.CoupledLISTA(W, 0.1, 3, weights=weights, support=0.05)
    names = [n for n, _ in enc.named_parameters()]
    params = [p.detach().clone().requires_grad_() for p in enc.parameters()]

    def run(*ps):  # the energy as a function of the learned parameters only
        return inference.energy(x, W, torch.func.functional_call(enc, dict(zip(names, ps)), (x,)), 0.1).sum()

    assert torch.autograd.gradcheck(run, params, eps=1e-7, atol=1e-6)


def test_untied_lista_refuses_more_steps_than_it_has():
    W, x = problem()
    with pytest.raises(ValueError, match="steps"):
        inference.LISTA(W, 0.1, 2, tied=False)(x, steps=3)
    with pytest.raises(ValueError, match="weights"):
        inference.CoupledLISTA(W, 0.1, 2, weights="other")
    with pytest.raises(ValueError, match="support"):
        inference.CoupledLISTA(W, 0.1, 2, support=0.5)


@pytest.mark.parametrize("measure", ["energy", "code"])
@pytest.mark.parametrize("accelerate", [True, False])
def test_iterations_to_accuracy_against_a_brute_force_count(measure, accelerate):
    W, x = problem(n=5, m=8, batch=4)
    lam = 0.2
    z_star = inference.fista(x, W, lam, 3000)
    solver = inference.fista if accelerate else inference.ista
    gaps = []
    for k in range(1, 41):  # each count restarts the solver: independent of the iterator under test
        z = solver(x, W, lam, k)
        e = inference.energy(x, W, z, lam).mean() - inference.energy(x, W, z_star, lam).mean()
        d = (z - z_star).pow(2).sum() / z_star.pow(2).sum()
        gaps.append(float(e if measure == "energy" else d))
    for target in [gaps[0] * 1.0001, gaps[4], gaps[19] * 1.0000001, min(gaps) / 2]:
        brute = next((k for k, g in enumerate(gaps, start=1) if g <= target), None)
        got = inference.iterations_to_accuracy(x, W, lam, target, z_star, measure=measure, max_steps=40,
                                               accelerate=accelerate)
        assert got == brute
    with pytest.raises(ValueError, match="measure"):
        inference.accuracy_gap(x, W, lam, z_star, z_star, "l0")


@pytest.mark.parametrize("variant", ["lista", "lista_untied", "lista_cp", "alista"])
def test_every_variant_trains_in_the_preset_and_reports_heldout_ratios(variant):
    cfg = RunConfig.model_validate(deep_merge(preset_by_id("lista-vs-fista")["config"], {
        "model": {"units": 16, "fista_steps": 60, "dictionary_steps": 3, "steps": 3, "variant": variant},
        "data": {"pool_size": 1000, "heldout_size": 64},
        "train": {"steps": 6, "batch_size": 16, "frame_every_steps": 3, "frame_every_seconds": 3600}}))
    rec = Recorder()
    assert train(cfg, rec) == "succeeded"
    metrics = rec.frames[-1]["metrics"]
    assert {"heldout_energy_lista_T", "heldout_code_error_lista_T", "heldout_code_error_fista_T",
            "heldout_iteration_ratio_energy", "heldout_iteration_ratio_code"} <= set(metrics)
    assert metrics["heldout_iteration_ratio_code"] == metrics["heldout_fista_iterations_code"] / 3
    learned = {"lista": {"W_e", "S", "theta"}, "lista_untied": {"W_e", "S", "theta"}, "lista_cp": {"W", "theta"},
               "alista": {"gamma", "theta", "W_analytic"}}[variant]
    assert set(rec.weights) >= {"W_d", *learned}
    assert all(np.isfinite(v).all() for v in rec.weights.values())


def test_support_selection_is_only_for_the_coupled_variants():
    with pytest.raises(ValueError, match="support_selection"):
        RunConfig.model_validate({"model": {"kind": "lista", "variant": "lista", "support_selection": 0.01}})
    RunConfig.model_validate({"model": {"kind": "lista", "variant": "lista_cp", "support_selection": 0.01}})
