"""DrSAE's dead-unit resampling (pinwheel/models/drsae.py): the closed form of the restart, and that it revives units."""
from __future__ import annotations

import torch

from pinwheel.configs.drsae import DrSAEConfig
from pinwheel.models.drsae import DrSAE

torch.set_num_threads(1)


def test_resampling_restarts_dead_units_as_ista_prototypes_of_the_worst_inputs():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(40, 12, generator=g)
    cfg = DrSAEConfig(units=6, steps=3, lam=0.1, E_row_max=100.0, unsupervised_steps=0)  # C gets Adam state too
    model = DrSAE(cfg, (3, 4), 3, g, x=x).double()
    opt = model.make_optimizer(1e-2)
    for step in range(3):  # some Adam state
        model.train_step(x[:8].double(), torch.zeros(8, dtype=torch.long), step, opt)
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    moments = {id(p): opt.state[p]["exp_avg"].clone() for p in model.parameters()}
    dead = torch.tensor([False, True, False, False, True, False])
    batch = x[8:16].double()
    error = torch.arange(8.0, dtype=torch.float64)  # input 7 is the worst reconstructed, then 6
    model.resample_(dead, batch, error, opt)

    eta, live = model.eta, ~dead
    for unit, row in ((1, 7), (4, 6)):
        expect = batch[row] / batch[row].norm()
        torch.testing.assert_close(model.D[:, unit], expect)
        torch.testing.assert_close(model.E[unit], eta * expect)
        torch.testing.assert_close(model.b[unit], torch.tensor(eta * cfg.lam, dtype=torch.float64))
        assert torch.all(model.C[:, unit] == 0)
    gram = model.D.T @ model.D
    fresh = torch.eye(6, dtype=torch.float64) - eta * gram
    torch.testing.assert_close(model.S[dead], fresh[dead])
    torch.testing.assert_close(model.S[:, dead], fresh[:, dead])
    # live units keep everything (E rows, D columns, the S block among them) and their Adam moments
    assert torch.equal(model.D[:, live], before["D"][:, live]) and torch.equal(model.E[live], before["E"][live])
    assert torch.equal(model.S[live][:, live], before["S"][live][:, live])
    assert torch.equal(model.b[live], before["b"][live]) and torch.equal(model.C[:, live], before["C"][:, live])
    for p, mask in ((model.E, dead[:, None].expand(6, 12)), (model.D, dead[None, :].expand(12, 6)),
                    (model.S, dead[:, None] | dead[None, :]), (model.C, dead[None, :].expand(3, 6))):
        m = opt.state[p]["exp_avg"]
        assert torch.all(m[mask] == 0) and torch.equal(m[~mask], moments[id(p)][~mask])


def test_training_with_resampling_revives_units_killed_by_their_threshold():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(200, 16, generator=g)
    y = torch.randint(0, 2, (200,), generator=g)
    runs = {}
    for every in (0, 5):
        cfg = DrSAEConfig(units=10, steps=3, lam=0.05, unsupervised_steps=50, resample_dead_every=every,
                          lr_warmup_steps=0)
        model = DrSAE(cfg, (4, 4), 2, torch.Generator().manual_seed(2), x=x)
        with torch.no_grad():
            model.b[:4] = 50.0  # four units that no input can switch on
        opt = model.make_optimizer(1e-3)
        gen = torch.Generator().manual_seed(3)
        for step in range(20):
            idx = torch.randint(0, 200, (16,), generator=gen)
            model.train_step(x[idx], y[idx], step, opt)
        with torch.no_grad():
            runs[every] = int((~(model.encode(x) > 0).any(0)).sum())
    assert runs[0] >= 4 and runs[5] == 0
