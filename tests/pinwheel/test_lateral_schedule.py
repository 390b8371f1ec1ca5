"""Lateral inhibition's row-sum schedule (row_sum_start → row_sum over row_sum_steps training steps): the
config's checks, the interpolation, and S kept on each step's constraint set, learned or not."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from pinwheel.configs.lateral import LateralConfig
from pinwheel.models.lateral import LateralInhibition

torch.set_num_threads(1)
TREE = {"kind": "tree", "branching": 3, "depth": 3}  # 13 units; free entries per row 0 (root), 8, 10


def tree_model(seed: int = 0, **extra) -> LateralInhibition:
    cfg = LateralConfig(units=13, lam=0.05, mask=TREE, beta=2.0, s_lr=10.0, inference_steps=60, nonnegative=True,
                        **{"row_sum": 3.0, **extra})
    return LateralInhibition(cfg, (4, 5), torch.Generator().manual_seed(seed)).double()


def test_row_sum_at_interpolates_linearly_then_holds():
    cfg = LateralConfig(units=13, mask=TREE, beta=2.0, row_sum=3.0, row_sum_start=12.0, row_sum_steps=6)
    assert [cfg.row_sum_at(k) for k in (0, 2, 3, 6, 7, 1000)] == pytest.approx([12.0, 9.0, 7.5, 3.0, 3.0, 3.0])
    plain = LateralConfig(units=13, mask=TREE, beta=2.0, row_sum=3.0)
    assert {plain.row_sum_at(k) for k in (0, 5, 10**6)} == {3.0}


@pytest.mark.parametrize("extra, field", [
    ({"row_sum_start": 12.0}, "row_sum_start"),  # no row_sum_steps
    ({"row_sum_steps": 100}, "row_sum_start"),  # no row_sum_start
    ({"row_sum_start": 17.0, "row_sum_steps": 100}, "row_sum_start"),  # > β · 8 free entries on a level-1 row
])
def test_schedules_that_cannot_work_are_refused_naming_the_field(extra, field):
    with pytest.raises(ValidationError) as err:
        LateralConfig(units=13, mask=TREE, beta=2.0, row_sum=3.0, **extra)
    assert field in str(err.value)


def feasible_rows(model: LateralInhibition) -> np.ndarray:
    """S's row sums on the rows that may inhibit, after checking S is symmetric, in [0, β] and 0 off the mask."""
    s, mask = model.S.numpy(), model.projection.mask
    assert np.allclose(s, s.T, atol=1e-9) and s.min() >= -1e-9 and s.max() <= model.config.beta + 1e-9
    assert np.abs(s[~mask]).max() == 0
    assert np.abs(s.sum(axis=1)[~model.projection.active]).max() == 0  # the root keeps a zero row
    return s.sum(axis=1)[model.projection.active]


@pytest.mark.parametrize("learn_s", [True, False])
def test_s_follows_the_schedule_step_by_step(learn_s):
    model = tree_model(row_sum_start=12.0, row_sum_steps=6, learn_S=learn_s)
    opt = model.make_optimizer(3e-3, "adam")
    x = torch.tensor(np.random.default_rng(0).normal(size=(32, 20)))
    assert feasible_rows(model) == pytest.approx(np.full(12, 12.0), abs=1e-5)  # S starts on row_sum_start
    seen = []
    for step in range(9):
        s_before = model.S.clone()
        model.train_step(x, None, step, opt)
        seen.append(feasible_rows(model).mean())
        assert feasible_rows(model) == pytest.approx(np.full(12, model.config.row_sum_at(step + 1)), abs=1e-5)
        if step >= 6 and not learn_s:  # schedule over and S not learned: S stays where it is
            assert torch.equal(model.S, s_before)
    assert seen == pytest.approx([10.5, 9.0, 7.5, 6.0, 4.5, 3.0, 3.0, 3.0, 3.0], abs=1e-5)


def test_without_a_schedule_training_is_unchanged():
    """The same seed and batches with and without row_sum_start = row_sum give the same S and W_d."""
    x = torch.tensor(np.random.default_rng(1).normal(size=(32, 20)))
    runs = []
    for extra in ({}, {"row_sum_start": 3.0, "row_sum_steps": 4}):
        model = tree_model(seed=3, **extra)
        opt = model.make_optimizer(3e-3, "adam")
        for step in range(6):
            model.train_step(x, None, step, opt)
        runs.append((model.S.clone(), model.W_d.detach().clone()))
    assert torch.allclose(runs[0][0], runs[1][0]) and torch.allclose(runs[0][1], runs[1][1])
    assert not torch.allclose(runs[0][0], tree_model(seed=3).S)  # S did move, so the comparison means something
