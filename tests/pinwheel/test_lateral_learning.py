"""Lateral inhibition under a strong S: inference against autograd, the S ascent and projection against
independent references, and pinwheel/analysis/lateral.py's metrics and relabelling control on synthetic cases."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.optimize import minimize

from pinwheel.analysis import lateral as L
from pinwheel.configs import RunConfig, deep_merge, preset_by_id
from pinwheel.configs.lateral import LateralConfig
from pinwheel.data import build_dataset
from pinwheel.groups import tree_parents
from pinwheel.inference import lipschitz
from pinwheel.models import build_model
from pinwheel.models.lateral import LateralInhibition, SProjection, tree_mask

torch.set_num_threads(1)


def strong_tree(seed: int, steps: int = 400, nonnegative: bool = False) -> LateralInhibition:
    """13 units on a tree, S far stronger than ‖W_d‖₂² (the regime where the old step oscillated)."""
    cfg = LateralConfig(units=13, lam=0.1, mask={"kind": "tree", "branching": 3, "depth": 3}, beta=2.0,
                        row_sum=8.0, inference_steps=steps, nonnegative=nonnegative)
    model = LateralInhibition(cfg, (4, 5), torch.Generator().manual_seed(seed)).double()
    rng = np.random.default_rng(seed)  # a non-uniform S inside the constraint set
    model.S.copy_(torch.tensor(model.projection(rng.uniform(0, 2, (13, 13)) * model.projection.mask)))
    return model


@pytest.mark.parametrize("seed", [0, 1])
def test_inference_never_raises_the_energy_and_stops_at_a_stationary_point(seed):
    model = strong_tree(seed)
    x = torch.tensor(np.random.default_rng(seed).normal(size=(16, 20)) * 2)
    energies = torch.stack([model.energy(x, model.infer(x, steps=t)) for t in range(1, 120)])  # (T, B)
    assert (energies[1:] <= energies[:-1] + 1e-9).all()  # monotone, per example
    z = model.infer(x).detach().clone().requires_grad_(True)
    smooth = 0.5 * (x - z @ model.W_d.detach().T).pow(2).sum()  # autograd for ∇ of the smooth part
    (grad,) = torch.autograd.grad(smooth, z)
    a = z.detach().abs()
    thr = model.config.lam + 2 * a @ model.S  # the subgradient bound of λ|z_i| + |z|ᵀS|z| in z_i
    on = a > 0
    np.testing.assert_allclose((grad + thr * z.detach().sign())[on].numpy(), 0, atol=1e-6)
    assert (grad.abs()[~on] <= thr[~on] + 1e-6).all()
    assert (on.sum(1) >= 2).float().mean() > 0.5  # codes use several units, not one


def test_nonnegative_inference_never_raises_the_energy_and_meets_its_kkt_conditions():
    """z ≥ 0 (the tree preset): monotone energy, and the KKT conditions of min E s.t. z ≥ 0 with ∇ from autograd:
    active units ∇_i + λ + 2(S z)_i = 0, inactive ones ∇_i + λ + 2(S z)_i ≥ 0."""
    model = strong_tree(3, nonnegative=True)
    x = torch.tensor(np.random.default_rng(3).normal(size=(16, 20)) * 2)
    energies = torch.stack([model.energy(x, model.infer(x, steps=t)) for t in range(1, 120)])  # (T, B)
    assert (energies[1:] <= energies[:-1] + 1e-9).all()
    z = model.infer(x).detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(0.5 * (x - z @ model.W_d.detach().T).pow(2).sum(), z)
    z = z.detach()
    assert (z >= 0).all()
    kkt = grad + model.config.lam + 2 * z @ model.S
    on = z > 0
    np.testing.assert_allclose(kkt[on].numpy(), 0, atol=1e-6)
    assert (kkt[~on] >= -1e-6).all()
    assert (on.sum(1) >= 2).float().mean() > 0.25  # several units, not one


def test_the_old_step_size_oscillates_where_the_new_one_converges():
    """Why the fix: with 1/‖W_d‖₂² alone the thresholded step flips all-on / all-off under a strong S."""
    model = strong_tree(0)
    x = torch.tensor(np.random.default_rng(0).normal(size=(16, 20)) * 2)
    w, s, lam = model.W_d.detach(), model.S, model.config.lam
    lip = lipschitz(w)
    z, active = torch.zeros(16, 13, dtype=torch.float64), []
    for _ in range(200):
        u = z - ((z @ w.T - x) @ w) / lip
        z = torch.sign(u) * torch.relu(u.abs() - (lam + 2 * z.abs() @ s) / lip)
        active.append(float((z != 0).sum()))
    assert abs(active[-1] - active[-2]) > 16  # still flipping after 200 steps
    e_old, e_new = model.energy(x, z).sum(), model.energy(x, model.infer(x)).sum()
    assert e_new < e_old


def test_s_step_is_the_projected_autograd_gradient_of_the_energy():
    model = strong_tree(2, steps=60)
    model.float()
    model.config = model.config.model_copy(update={"s_lr": 0.7})
    x = torch.randn(32, 20, generator=torch.Generator().manual_seed(3))
    z = model.infer(x)
    s_var = model.S.detach().double().clone().requires_grad_(True)
    a = z.double().abs()
    (grad,) = torch.autograd.grad(((a @ s_var) * a).sum(1).mean(), s_var)  # ∂ mean E / ∂S
    expected = model.projection(model.S.double().numpy() + 0.7 * grad.numpy())
    opt = torch.optim.SGD(model.parameters(), lr=0.0)  # W_d fixed: only S moves
    out = model.train_step(x, None, 0, opt)
    np.testing.assert_allclose(model.S.double().numpy(), expected, atol=1e-5)
    assert float(out["inhibition"]) > 0
    assert np.abs(model.S.double().numpy() - s_var.detach().numpy()).max() > 1e-3  # it moved


def test_s_projection_is_the_nearest_feasible_matrix_against_a_generic_solver():
    mask = tree_mask(2, 3)  # 7 units
    proj = SProjection(mask, beta=0.4, row_sum=0.5)
    rng = np.random.default_rng(1)
    target = rng.normal(0.2, 0.4, mask.shape)
    target = 0.5 * (target + target.T)
    ours = proj(target)
    iu = [(i, j) for i in range(7) for j in range(i + 1, 7) if proj.mask[i, j]]

    def full(v):
        s = np.zeros((7, 7))
        for k, (i, j) in enumerate(iu):
            s[i, j] = s[j, i] = v[k]
        return s

    rows = [{"type": "eq", "fun": (lambda v, r=r: full(v)[r].sum() - 0.5)} for r in range(7) if proj.active[r]]
    ref = minimize(lambda v: ((full(v) - target) ** 2 * proj.mask).sum(), np.full(len(iu), 0.1), method="SLSQP",
                   bounds=[(0, 0.4)] * len(iu), constraints=rows, options={"ftol": 1e-14, "maxiter": 500})
    assert ref.success
    np.testing.assert_allclose(ours, full(ref.x), atol=1e-5)
    assert np.allclose(ours, ours.T) and ours.min() >= 0 and ours.max() <= 0.4 + 1e-12
    assert (np.diag(ours) == 0).all() and (ours[~mask] == 0).all()  # zero along every branch


def test_tree_preset_codes_use_a_branch_and_inhibit():
    """The preset at its start: several units per patch and a non-zero inhibition term (the old
    oscillating inference gave 0.85 units and exactly zero)."""
    cfg = RunConfig.model_validate(deep_merge(preset_by_id("lateral-tree")["config"], {"data": {"pool_size": 1000}}))
    data = build_dataset(cfg.data, 0)
    model = build_model(cfg.model, data, torch.Generator().manual_seed(0))
    z = model.infer(data.x[:256]).numpy()
    stats = L.code_statistics(data.x[:256].numpy(), z, z @ model.W_d.detach().numpy().T)
    assert stats["active_per_patch"] > 2
    assert (z >= 0).all()  # the preset's codes are non-negative: a unit codes one polarity
    assert L.inhibition_term(z, model.S.numpy()) > 0
    assert L.cross_coactivity(z, model.mask.numpy()) > 0


# ---- analysis on synthetic cases -----------------------------------------------------------------

def test_code_statistics_on_a_hand_built_code():
    x = np.array([[3.0, 4.0], [1.0, 0.0]])
    z = np.array([[1.0, 0.0, 0.0], [0.0, -2.0, 0.0]])
    x_hat = np.array([[3.0, 0.0], [1.0, 0.0]])  # residual energies 16 and 0 of 25 and 1
    s = L.code_statistics(x, z, x_hat)
    assert s["active_per_patch"] == 1.0 and s["dead_units"] == 1 and s["ever_active_share"] == pytest.approx(2 / 3)
    assert s["relative_error"] == pytest.approx(16 / 26)
    assert s["relative_error_norm"] == pytest.approx((4 / 5 + 0) / 2)
    assert L.inhibition_term(z, np.ones((3, 3)) - np.eye(3)) == 0.0  # never two active together
    mask = np.ones((3, 3), dtype=bool)
    assert L.cross_coactivity(z, mask) == 0.0
    assert L.cross_coactivity(np.array([[1.0, 1.0, 0.0]]), mask) == 1.0
    mask[0, 1] = mask[1, 0] = False  # that pair may fire together
    assert L.cross_coactivity(np.array([[1.0, 1.0, 0.0]]), mask) == 0.0


def test_s_movement_reports_spread_change_and_bounds():
    mask = ~np.eye(3, dtype=bool)
    s0 = np.full((3, 3), 0.5) * mask
    s = np.array([[0, 1.0, 0.0], [1.0, 0, 0.5], [0.0, 0.5, 0]])
    m = L.s_movement(s, s0, mask, beta=1.0)
    assert m["spread_initial"] == 0.0 and m["spread"] == pytest.approx(np.std([1, 0, 1, 0.5, 0, 0.5]))
    assert m["max_change"] == pytest.approx(0.5)
    assert m["at_cap_share"] == pytest.approx(1 / 3) and m["at_zero_share"] == pytest.approx(1 / 3)


def test_relabelling_control_separates_learned_structure_from_chance():
    parents = tree_parents(3, 3)
    rng = np.random.default_rng(0)
    top = {i: (i if parents[i] == 0 else parents[i]) for i in range(1, len(parents))}  # root child of each node
    templates = {k: rng.normal(size=(6, 6)) for k in set(top.values())}
    root = sum(templates.values())  # the root resembles every branch a little, each branch its own template
    structured = np.stack([root + 0.3 * rng.normal(size=(6, 6))] + [templates[top[i]] + 0.3 * rng.normal(size=(6, 6))
                                                                     for i in range(1, len(parents))])
    c = L.relabel_control(structured, parents, draws=200)
    assert c["observed"]["ratio"] > 2 and c["observed"]["ratio"] > c["shuffled_ratio_p95"] and c["p_value"] < 0.02
    random = rng.normal(size=(len(parents), 6, 6))
    r = L.relabel_control(random, parents, draws=200)
    assert r["p_value"] > 0.02 and abs(r["shuffled_ratio_mean"] - 1) < 0.2


def test_grid_shuffle_control_on_a_smooth_and_a_random_map():
    side, n = 8, 9
    yy, xx = np.mgrid[0:n, 0:n] - n // 2
    filters = []
    for r in range(side):
        for c in range(side):
            th = np.pi * c / side  # orientation drifts smoothly along the columns
            filters.append(np.cos(1.5 * (xx * np.cos(th) + yy * np.sin(th))) * np.exp(-(xx**2 + yy**2) / 8))
    g = L.grid_shuffle_control(np.array(filters), (side, side), wrap=True, draws=30)
    assert g["observed"] > 0.8 and g["shuffled_mean"] < 0.3


# ---- the 2-D grid's inhibition annulus ---------------------------------------------------------------

def test_grid_annulus_mask_against_brute_force_distances():
    from pinwheel.models.lateral import grid_mask
    side = 7
    mask = grid_mask(side, 1.5, wrap=True, outer_radius=3.0)
    for i in range(side * side):
        for j in range(side * side):
            dr = min(abs(i // side - j // side), side - abs(i // side - j // side))
            dc = min(abs(i % side - j % side), side - abs(i % side - j % side))
            assert mask[i, j] == (1.5 < (dr * dr + dc * dc) ** 0.5 <= 3.0), (i, j)
    assert (grid_mask(side, 1.5, wrap=True) == grid_mask(side, 1.5, wrap=True, outer_radius=None)).all()


@pytest.mark.parametrize("mask, extra, field", [
    ({"kind": "grid", "radius": 2.0, "outer_radius": 2.0}, {}, "outer_radius"),
    ({"kind": "grid", "radius": 1.5, "outer_radius": 2.0}, {"beta": 1.0, "row_sum": 5.0}, "row_sum"),  # 4 free entries
])
def test_annulus_configs_that_cannot_work_are_refused_naming_the_field(mask, extra, field):
    from pydantic import ValidationError
    with pytest.raises(ValidationError) as err:
        LateralConfig(units=64, mask=mask, **extra)
    assert field in str(err.value)


def gabor(theta: float, phase: float, size: int = 8, freq: float = 0.25) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size] - (size - 1) / 2
    u = xx * np.cos(theta) + yy * np.sin(theta)
    return np.cos(2 * np.pi * freq * u + phase) * np.exp(-(xx**2 + yy**2) / 8)


def test_spectral_similarity_ignores_phase_but_not_orientation():
    f = np.stack([gabor(0, 0), gabor(0, np.pi / 2), gabor(np.pi / 2, 0)])
    sims = L.similarity_matrices(f)
    assert sims["cos"][0, 1] < 0.1 and sims["spectrum"][0, 1] > 0.95  # a quadrature pair: orthogonal, same spectrum
    assert sims["spectrum"][0, 2] < 0.3 and sims["orientation"][0, 2] < -0.9
    np.testing.assert_allclose(np.diag(sims["spectrum"]), 1, atol=1e-9)


def test_relabel_control_observed_numbers_agree_with_topography():
    from pinwheel.analysis.topography import branch_similarity
    parents = tree_parents(2, 3)
    f = np.random.default_rng(4).normal(size=(len(parents), 6, 6))
    c = L.relabel_control(f, parents, draws=20)
    ref = branch_similarity(f, parents)
    for key in ("within", "across", "ratio", "orientation_within", "orientation_across"):
        assert c["observed"][key] == pytest.approx(ref[key])
    assert c["observed"]["cos_within"] == pytest.approx(ref["within"])


def test_panels_report_the_inhibition_term_and_the_spread_of_s():
    from pinwheel.panels import tree_inhibition
    model = strong_tree(5, steps=50).float()
    x = torch.randn(64, 20, generator=torch.Generator().manual_seed(5))
    p = tree_inhibition.produce(model, x)
    z = model.infer(x).numpy()
    assert p["inhibition_term"] == pytest.approx(L.inhibition_term(z, model.S.numpy()), rel=1e-3, abs=1e-5)
    assert p["active_per_probe"] == pytest.approx(float((z != 0).sum(1).mean()), abs=1e-3)
    free = model.S.numpy()[model.projection.mask]
    assert p["matrix"]["free_spread"] == pytest.approx(free.std(), abs=1e-5) and p["matrix"]["free_spread"] > 0
