"""Retinotopic windows of the topographic auto-encoder (configs/group_sparse.py `retinotopy`, docs/pinwheels.md):
the window maths against a brute-force reference, shapes, the constraints, and the default left unchanged."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from pinwheel.configs import RunConfig, preset_by_id
from pinwheel.configs.group_sparse import GroupSparseConfig
from pinwheel.models.group_sparse import GroupSparseAE, centred, retinotopic_windows
from pinwheel.models.image_ops import dihedral, periodic_component

torch.set_num_threads(1)

TORUS = {"kind": "torus_2d", "pool": 3, "stride": 1, "gaussian_sigma": 0.7}


def model(units=36, shape=(6, 6), retinotopy=None, seed=0) -> GroupSparseAE:
    cfg = GroupSparseConfig(units=units, lam=0.3, groups=TORUS, retinotopy=retinotopy)
    return GroupSparseAE(cfg, shape, torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("side, shape, sigma", [(6, (6, 6), 1.0), (8, (4, 4), 0.8), (5, (7, 7), 1.3), (4, (6, 6), 3.0)])
def test_windows_match_a_brute_force_reference(side, shape, sigma):
    h, w = shape
    expected = np.zeros((side * side, h * w))
    for a in range(side):
        for b in range(side):
            cr, cc = a * h / side, b * w / side  # unit (a, b)'s centre, pixels
            for p in range(h):
                for q in range(w):  # the nearest copy of the pixel on the periodic plane
                    d2 = min((p + i * h - cr) ** 2 + (q + j * w - cc) ** 2 for i in (-1, 0, 1) for j in (-1, 0, 1))
                    expected[a * side + b, p * w + q] = math.exp(-d2 / (2 * sigma**2)) if d2 <= 9 * sigma**2 else 0.0
    got = retinotopic_windows(side, shape, sigma)
    assert got.shape == (side * side, h * w) and got.dtype == torch.float32
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-6)


def test_centred_rolls_each_filter_round_to_the_patch_centre():
    side, h = 4, 8  # two pixels per unit: unit (a, b) centred at pixel (2a, 2b)
    filters = np.zeros((side * side, h * h), dtype=np.float32)
    for i in range(side * side):
        a, b = divmod(i, side)
        filters[i, (2 * a) * h + 2 * b] = 1.0  # a spike at the unit's window centre
        filters[i, (2 * a) * h + (2 * b - 1) % h] = 0.5  # and one left of it, across the edge for b = 0
    out = centred(filters, (h, h), side)
    assert out.shape == (side * side, h, h)
    for i in range(side * side):
        assert out[i, h // 2, h // 2] == 1.0 and out[i, h // 2, h // 2 - 1] == 0.5 and out[i].sum() == 1.5


def test_retinotopic_encode_decode_and_loss_use_windowed_filters_on_the_periodic_component():
    m = model(retinotopy={"sigma": 1.0})
    x = torch.randn(5, 36, generator=torch.Generator().manual_seed(3))
    window = retinotopic_windows(6, (6, 6), 1.0)
    p = periodic_component(x, (6, 6))
    z = m.encode(x)
    assert z.shape == (5, 36)
    torch.testing.assert_close(z, torch.relu(p @ (m.W_e * window).T + m.b))
    torch.testing.assert_close(m.decode(z), z @ (m.W_d * window.T).T)
    loss, terms = m.loss(x, None, step=10)
    recon = 0.5 * (p - m.decode(z)).pow(2).sum(dim=1).mean()
    torch.testing.assert_close(terms["reconstruction"], recon)
    bank = m.filter_bank()
    assert bank["filters"].shape == (36, 6, 6) and bank["layout"] == {"type": "grid", "rows": 6, "cols": 6, "wrap": True}
    np.testing.assert_allclose(bank["filters"], centred((m.W_d * window.T).T.detach().numpy(), (6, 6), 6))
    assert "window" not in m.state_dict() and set(m.weights()) >= {"W_e", "W_d", "b", "window"}


def test_weights_outside_the_window_stay_zero_and_atoms_in_use_are_bounded():
    m = model(units=16, shape=(8, 8), retinotopy={"sigma": 0.7})
    outside = retinotopic_windows(4, (8, 8), 0.7) == 0  # (m, n)
    assert outside.any() and (m.W_e[outside] == 0).all() and (m.W_d.T[outside] == 0).all()
    opt = m.make_optimizer(0.05)
    gen = torch.Generator().manual_seed(1)
    for step in range(5):
        m.train_step(torch.randn(32, 64, generator=gen) * 3, None, step, opt)
    assert (m.W_e[outside] == 0).all() and (m.W_d.T[outside] == 0).all()
    with torch.no_grad():
        m.W_d.mul_(10)
        m.project_()
    norms = m.decoder().norm(dim=0)
    assert (norms <= 1 + 1e-5).all() and (norms > 1 - 1e-5).any()


def test_default_model_is_unchanged_by_the_option():
    """Without `retinotopy`: global filters on the raw patch, the same parameters and the same numbers as before."""
    m = model()
    assert not m.retinotopic and not hasattr(m, "window")
    assert set(m.state_dict()) == {"W_d", "W_e", "b", "group_weights"}
    x = torch.randn(4, 36, generator=torch.Generator().manual_seed(2))
    z = m.encode(x)
    torch.testing.assert_close(z, torch.relu(x @ m.W_e.T + m.b))
    loss, terms = m.loss(x, None, step=0)
    torch.testing.assert_close(terms["reconstruction"], 0.5 * (x - z @ m.W_d.T).pow(2).sum(dim=1).mean())
    np.testing.assert_array_equal(m.filter_bank()["filters"], m.W_d.T.detach().numpy().reshape(-1, 6, 6))
    same_seed = GroupSparseAE(GroupSparseConfig(units=36, lam=0.3, groups=TORUS), (6, 6), torch.Generator().manual_seed(0))
    torch.testing.assert_close(same_seed.W_d, m.W_d)  # the option costs no draws from the generator
    with torch.no_grad():
        m.W_d.mul_(3)
        m.project_()
    torch.testing.assert_close(m.W_d.norm(dim=0), torch.ones(36))


@pytest.mark.parametrize("bad, field", [
    ({"units": 64, "groups": {"kind": "blocks_1d", "size": 4}, "retinotopy": {"sigma": 1.5}}, "retinotopy"),
    ({"units": 64, "form": "sparse_coding", "groups": TORUS, "retinotopy": {"sigma": 1.5}}, "retinotopy"),
    ({"units": 64, "groups": TORUS, "retinotopy": {"sigma": 0}}, "retinotopy.sigma"),
    ({"units": 64, "groups": TORUS, "retinotopy": {"sigma": 1.5, "width": 2}}, "retinotopy.width"),
    ({"units": 64, "form": "sparse_coding", "groups": TORUS, "augment": True}, "augment"),
])
def test_bad_retinotopy_is_refused_naming_the_field(bad, field):
    with pytest.raises(ValidationError) as err:
        GroupSparseConfig.model_validate(bad)
    assert field in str(err.value)


def test_topographic_preset_is_valid_and_the_others_have_no_windows():
    for preset_id in ("topographic-natural", "groups-1d-blocks", "groups-tree"):
        cfg = RunConfig.model_validate(preset_by_id(preset_id)["config"])
        assert (cfg.model.retinotopy is not None) == (preset_id == "topographic-natural")


@pytest.mark.parametrize("side, pool, sigma", [(6, 3, 0.7), (5, 5, 1.0), (8, 4, None)])
def test_torus_penalty_equals_the_dense_group_sum(side, pool, sigma):
    from pinwheel.models.group_sparse import torus_penalty
    m = GroupSparseAE(GroupSparseConfig(units=side * side, groups={"kind": "torus_2d", "pool": pool, "stride": 1,
                                                                   "gaussian_sigma": sigma}), (4, 4), torch.Generator())
    z = torch.relu(torch.randn(7, side * side, generator=torch.Generator().manual_seed(4)))
    torch.testing.assert_close(torus_penalty(z, m.pool_axis), m.groups.penalty(z))
    assert "pool_axis" not in m.state_dict()


def test_augment_shows_each_patch_under_a_symmetry_drawn_from_the_run_generator():
    cfg = GroupSparseConfig(units=36, lam=0.3, groups=TORUS, augment=True, retinotopy={"sigma": 1.0})
    m = GroupSparseAE(cfg, (6, 6), torch.Generator().manual_seed(0))
    x = torch.randn(9, 36, generator=torch.Generator().manual_seed(5))
    state = m.generator.get_state()
    loss, terms = m.loss(x, None, step=10)
    twin = torch.Generator().manual_seed(0)
    twin.set_state(state)
    seen = periodic_component(dihedral(x, (6, 6), twin), (6, 6))
    z = torch.relu(seen @ m.encoder().T + m.b)
    expected = 0.5 * (seen - m.decode(z)).pow(2).sum(dim=1).mean()
    torch.testing.assert_close(terms["reconstruction"], expected)


def test_exported_weights_are_the_filters_in_use():
    """weights.npz is what a user loads: z = ReLU(W_e p + b) and x̂ = W_d z must hold with its arrays (p the
    periodic component), so with windows it carries W_e ⊙ M and W_d ⊙ Mᵀ, not the raw parameters."""
    m = model(retinotopy={"sigma": 1.0})
    with torch.no_grad():  # parameters that differ from the filters in use everywhere
        m.W_e.add_(1.0)
        m.W_d.add_(1.0)
    w = m.weights()
    x = torch.randn(4, 36, generator=torch.Generator().manual_seed(5))
    p = periodic_component(x, (6, 6)).numpy()
    z = np.maximum(p @ w["W_e"].T + w["b"], 0)
    np.testing.assert_allclose(z, m.encode(x).detach().numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(z @ w["W_d"].T, m.decode(m.encode(x)).detach().numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(w["W_d"], (m.W_d * m.window.T).detach().numpy())
    plain = model()
    np.testing.assert_array_equal(plain.weights()["W_d"], plain.W_d.detach().numpy())
