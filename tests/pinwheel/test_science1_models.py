"""Science I families: DrSAE's recurrence by hand, validation messages, whitening, presets end to end."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from tests.conftest import Recorder
from pinwheel.analysis import unit_types
from pinwheel.configs import RunConfig, deep_merge, preset_by_id
from pinwheel.configs.drsae import DrSAEConfig
from pinwheel.configs.group_sparse import GroupSparseConfig
from pinwheel.configs.lista import ListaConfig
from pinwheel.data import natural
from pinwheel.models.drsae import DrSAE
from pinwheel.train import train

torch.set_num_threads(1)


def test_drsae_recurrence_by_hand_on_three_units():
    model = DrSAE(DrSAEConfig(units=3, steps=3, E_row_max=100.0), (1, 2), 2, torch.Generator().manual_seed(0))
    with torch.no_grad():
        model.E.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]]))
        model.S.copy_(torch.tensor([[0.0, -0.5, 0.0], [0.2, 0.0, 0.0], [1.0, 1.0, 0.0]]))
        model.b.copy_(torch.tensor([0.1, 0.2, 0.9]))
    x = torch.tensor([[1.0, 2.0]])
    # drive E x − b = [0.9, 1.8, 0.6]
    # z¹ = ReLU(drive)                             = [0.9, 1.8, 0.6]
    # z² = ReLU(drive + S z¹) = [0.9 − 0.9, 1.8 + 0.18, 0.6 + 2.7]     = [0.0, 1.98, 3.3]
    # z³ = ReLU(drive + S z²) = [0.9 − 0.99, 1.8 + 0, 0.6 + 1.98]      = [0.0, 1.8, 2.58]
    traj = model.trajectory(x)
    expected = [[0.9, 1.8, 0.6], [0.0, 1.98, 3.3], [0.0, 1.8, 2.58]]
    for z, e in zip(traj, expected):
        torch.testing.assert_close(z, torch.tensor([e]))
    torch.testing.assert_close(model.encode(x), torch.tensor([expected[-1]]))


def test_drsae_constraints_and_loss_gradient():
    cfg = DrSAEConfig(units=5, steps=4, unsupervised_steps=0)
    model = DrSAE(cfg, (2, 3), 3, torch.Generator().manual_seed(1)).double()
    with torch.no_grad():
        model.E.mul_(50)
        model.C.mul_(1000)
        model.D.mul_(3)
        model.project_()
    assert (model.E.norm(dim=1) <= 1.25 / 4 + 1e-9).all() and (model.C.norm(dim=1) <= 5 + 1e-9).all()
    assert (model.D.norm(dim=0) <= 1 + 1e-9).all()
    x, y = torch.rand(4, 6, dtype=torch.double), torch.tensor([0, 1, 2, 1])
    with torch.no_grad():
        model.b.fill_(-0.05)  # keep every unit away from the ReLU kink for finite differences
    names = ["E", "S", "b", "D", "C"]
    params = [getattr(model, n) for n in names]

    def f(*ps):  # the full DrSAE loss (phase 2) as a function of its parameters
        for n, p in zip(names, ps):
            model._parameters[n] = p
        return model.loss(x, y, step=10)[0]

    inputs = tuple(p.detach().clone().requires_grad_(True) for p in params)
    assert torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-5)
    assert float(f(*inputs).detach()) > 0


def test_whitening_flattens_the_radial_power_spectrum():
    rng = np.random.default_rng(0)
    # a 1/f² power-spectrum image (brown noise on both axes) like a natural scene
    f = np.hypot(*np.meshgrid(np.fft.fftfreq(128), np.fft.fftfreq(128), indexing="ij"))
    image = np.real(np.fft.ifft2(np.fft.fft2(rng.normal(size=(128, 128))) / np.maximum(f, 1 / 128)))
    freqs, before = natural.radial_power_spectrum(image)
    _, after = natural.radial_power_spectrum(natural.whiten(image))
    mid = (freqs > 4) & (freqs < 0.25 * 128)  # below the roll-off at f₀ = 0.4·N
    slope = lambda p: np.polyfit(np.log(freqs[mid]), np.log(p[mid]), 1)[0]  # noqa: E731
    assert slope(before) < -1.5 and abs(slope(after)) < 0.3
    photo = natural.skimage_photographs()[0]
    fr, white = natural.radial_power_spectrum(natural.whiten(photo))
    _, raw = natural.radial_power_spectrum(photo)
    band = (fr > 8) & (fr < 0.25 * min(photo.shape))
    spread = lambda p: np.log(p[band].max() / p[band].min())  # noqa: E731
    assert spread(white) < 0.35 * spread(raw)


@pytest.mark.parametrize("cls, bad, field", [
    (ListaConfig, {"steps": 0}, "steps"),
    (ListaConfig, {"lam": -0.1}, "lam"),
    (DrSAEConfig, {"steps": 0}, "steps"),
    (DrSAEConfig, {"lam": -1}, "lam"),
    (GroupSparseConfig, {"units": 8, "groups": {"kind": "blocks_1d", "size": 16}}, "groups.size"),
    (GroupSparseConfig, {"units": 16, "groups": {"kind": "torus_2d", "pool": 5, "stride": 1}}, "groups.pool"),
    (GroupSparseConfig, {"units": 7, "groups": {"kind": "tree", "branching": 2, "depth": 4}}, "groups.depth"),
    (GroupSparseConfig, {"lam": -1}, "lam"),
    (GroupSparseConfig, {"inference_steps": 0}, "inference_steps"),
])
def test_impossible_configs_are_refused_naming_the_field(cls, bad, field):
    with pytest.raises(ValidationError) as err:
        cls.model_validate(bad)
    assert field in str(err.value)


def test_drsae_needs_labelled_data():
    with pytest.raises(ValidationError, match="data.kind"):
        RunConfig.model_validate({"model": {"kind": "drsae"}, "data": {"kind": "natural_patches"}})


TINY = {
    "lista-vs-fista": {"model": {"units": 16, "fista_steps": 20, "dictionary_steps": 3}, "data": {"pool_size": 1000}},
    "drsae-mnist": {"model": {"units": 12, "unsupervised_steps": 3},
                    "data": {"kind": "sklearn_digits", "train_size": 200, "test_size": 50}},
    "groups-1d-blocks": {"model": {"units": 16, "inference_steps": 5}, "data": {"pool_size": 1000}},
    "groups-tree": {"model": {"units": 7, "inference_steps": 5, "groups": {"depth": 3}}, "data": {"pool_size": 1000}},
}
WEIGHTS = {"lista-vs-fista": {"W_d", "W_e", "S", "theta"}, "drsae-mnist": {"E", "S", "b", "D", "C"},
           "groups-1d-blocks": {"W_d", "group_weights"}, "groups-tree": {"W_d", "group_weights", "tree_parents"}}
METRICS = {"lista-vs-fista": {"encoder_loss", "heldout_energy_lista_T", "heldout_energy_fista_T"},
           "drsae-mnist": {"reconstruction", "cross_entropy", "test_error"},
           "groups-1d-blocks": {"reconstruction", "zero_group_fraction"},
           "groups-tree": {"reconstruction", "zero_group_fraction"}}


@pytest.mark.parametrize("preset_id", sorted(TINY))
def test_preset_trains_end_to_end(preset_id):
    preset = preset_by_id(preset_id)
    assert preset is not None
    RunConfig.model_validate(preset["config"])  # the preset itself is valid
    cfg = RunConfig.model_validate(deep_merge(deep_merge(preset["config"], TINY[preset_id]), {
        "train": {"steps": 6, "batch_size": 16, "frame_every_steps": 3, "frame_every_seconds": 3600}}))
    rec = Recorder()
    assert train(cfg, rec) == "succeeded"
    assert [f["step"] for f in rec.frames] == [0, 3, 6]
    assert set(rec.frames[-1]["metrics"]) >= METRICS[preset_id]
    assert set(rec.weights) >= WEIGHTS[preset_id]
    assert all(np.isfinite(v).all() for v in rec.weights.values())
    assert rec.frames[-1]["panels"]["filter_grid"]["count"] == cfg.model.units


def test_unit_types_label_each_unit():
    cfg = DrSAEConfig(units=6, steps=3)
    model = DrSAE(cfg, (1, 4), 2, torch.Generator().manual_seed(0))
    with torch.no_grad():
        model.E.copy_(torch.zeros(6, 4)); model.E[0, 0] = 1.0; model.E[1, 1] = 1.0  # noqa: E702
        model.S.zero_(); model.S[2, 0] = 1.0  # noqa: E702 — unit 2 is driven only through the recurrence
        model.b.zero_()
        model.D.copy_(torch.eye(4, 6))
    x = torch.tensor([[1.0, 0, 0, 0], [0.9, 0, 0, 0], [0, 1.0, 0.5, 0], [0, 0.8, 0.5, 0]])
    y = torch.tensor([0, 0, 1, 1])
    out = unit_types.split(model, x, y, n_classes=2)
    labels = out["labels"].tolist()
    assert labels[2] == "categorical"  # class-0 only, all its activity arrives after step 1
    assert labels[3:] == ["dead"] * 3
    assert out["stats"]["growth"][2] == pytest.approx(1.0) and out["stats"]["growth"][0] == pytest.approx(0.0)
    # unit 2's excitation comes only from unit 0 through S, units 0 and 1 only from the input
    assert out["stats"]["lateral_share"][:3].tolist() == pytest.approx([0.0, 0.0, 1.0])
    # a self-connection integrates the input over t (growth > 0) but is not lateral excitation
    with torch.no_grad():
        model.S[0, 0] = 0.5
    again = unit_types.unit_statistics(model, x, y, n_classes=2)
    assert again["growth"][0] == pytest.approx(1 - 1 / (1 + 0.5 + 0.25)) and again["lateral_share"][0] == 0.0
    assert sum(out["counts"].values()) == 6


def test_drsae_data_initialisation_is_nonnegative_ista_on_training_digits():
    from pinwheel import inference
    g = torch.Generator().manual_seed(3)
    x = torch.rand(50, 12)
    cfg = DrSAEConfig(units=8, steps=6, lam=0.05)
    model = DrSAE(cfg, (3, 4), 2, torch.Generator().manual_seed(0), x=x).double()
    D = model.D.detach()
    torch.testing.assert_close(D.norm(dim=0), torch.ones(8, dtype=torch.double))
    # every column is one of the training inputs, up to the σ = 0.01 noise and the normalisation
    cos = (torch.nn.functional.normalize(x.double(), dim=1) @ D).max(dim=0).values
    assert (cos > 0.99).all()
    eta = 1.0 / inference.lipschitz(D)
    torch.testing.assert_close(model.E.detach(), eta * D.T)
    torch.testing.assert_close(model.S.detach(), torch.eye(8, dtype=torch.double) - eta * D.T @ D)
    torch.testing.assert_close(model.b.detach(), torch.full((8,), eta * cfg.lam, dtype=torch.double))
    # so the encoder at initialisation is T steps of non-negative ISTA on ½‖x − Dz‖² + λ‖z‖₁, step 1/L
    xb = torch.rand(5, 12, generator=g, dtype=torch.double)
    with torch.no_grad():
        torch.testing.assert_close(model.encode(xb), inference.ista(xb, D, cfg.lam, cfg.steps, nonneg=True))
    assert (model.encode(xb) > 0).any(dim=0).all()  # no unit starts dead
    # a random dictionary instead, and an explicit ISTA step η
    rnd = DrSAE(DrSAEConfig(units=8, steps=6, init="random", init_step=0.05), (3, 4), 2,
                torch.Generator().manual_seed(0), x=x)
    assert (torch.nn.functional.normalize(x, dim=1) @ rnd.D.detach()).max() < 0.99
    torch.testing.assert_close(rnd.E.detach(), 0.05 * rnd.D.detach().T)


def test_drsae_encoder_learning_rate_scale_and_warmups():
    cfg = DrSAEConfig(units=4, steps=2, encoder_lr_scale=0.1, lr_warmup_steps=4, lam=0.8, lam_warmup_steps=10,
                      unsupervised_steps=0)
    model = DrSAE(cfg, (2, 2), 2, torch.Generator().manual_seed(0), x=torch.rand(20, 4))
    opt = model.make_optimizer(1e-2)
    enc, dec = opt.param_groups
    assert {id(p) for p in enc["params"]} == {id(model.E), id(model.S), id(model.b)}
    assert {id(p) for p in dec["params"]} == {id(model.D), id(model.C)}
    x, y = torch.rand(6, 4), torch.tensor([0, 1, 0, 1, 0, 1])
    seen = []
    for step in range(6):
        model.train_step(x, y, step, opt)
        seen.append((enc["lr"], dec["lr"]))
    expected = [(1e-3 * k / 4, 1e-2 * k / 4) for k in (1, 2, 3, 4, 4, 4)]
    for (a, b), (ea, eb) in zip(seen, expected):
        assert a == pytest.approx(ea) and b == pytest.approx(eb)
    assert [model.lam_at(s) for s in (0, 5, 10, 20)] == pytest.approx([0.0, 0.4, 0.8, 0.8])
    # with a half-life of 2 steps after the 4-step warm-up: ×1/4, ×2/4, ×3/4, ×1, then ×2^(−1/2), ×2^(−1)
    halving = DrSAE(cfg.model_copy(update={"lr_half_life_steps": 2}), (2, 2), 2, torch.Generator().manual_seed(0))
    opt2 = halving.make_optimizer(1e-2)
    lrs = []
    for step in range(6):
        halving.train_step(x, y, step, opt2)
        lrs.append(opt2.param_groups[1]["lr"])
    assert lrs == pytest.approx([1e-2 * f for f in (0.25, 0.5, 0.75, 1.0, 2 ** -0.5, 0.5)])
    # the λ in the loss is the ramped one: at step 0 the loss has no sparsity term at all
    model.C.data.zero_()  # CE = log 2 exactly
    loss, terms = model.loss(x, y, step=0)
    torch.testing.assert_close(loss, terms["reconstruction"] + cfg.class_weight * torch.log(torch.tensor(2.0)))
