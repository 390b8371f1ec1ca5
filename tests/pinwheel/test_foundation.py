"""The topographic model, its group structure, the patch pipeline and the generic loop."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tests.conftest import Recorder
from pinwheel import groups
from pinwheel.configs import PRESETS, RunConfig, deep_merge
from pinwheel.data import natural
from pinwheel.train import TrainingDiverged, train


def test_torus_groups_wrap_and_cover_every_unit():
    g = groups.torus_2d(side=4, pool=3, stride=2)
    w = g.weights.numpy()
    assert w.shape == (4, 16) and (w.sum(axis=1) == 9).all()
    # the pool at grid (2, 2) wraps to rows/cols 2, 3, 0
    members = {(i // 4, i % 4) for i in np.flatnonzero(w[3])}
    assert members == {(r, c) for r in (2, 3, 0) for c in (2, 3, 0)}
    assert (w.sum(axis=0) > 0).all()


def test_group_penalty_matches_the_formula():
    g = groups.windows_1d(m=6, size=3, stride=2)
    z = torch.randn(5, 6)
    brute = torch.tensor([sum(math.sqrt(sum(float(z[b, (s + k) % 6]) ** 2 for k in range(3)) + groups.EPS)
                              for s in range(0, 6, 2)) for b in range(5)])
    torch.testing.assert_close(g.penalty(z), brute, rtol=1e-5, atol=1e-5)


def test_tree_groups_are_subtrees():
    g = groups.tree(branching=2, depth=3)
    w = g.weights.numpy()
    assert g.parents.tolist() == [-1, 0, 0, 1, 1, 2, 2]
    assert set(np.flatnonzero(w[1])) == {1, 3, 4} and w[0].sum() == 7 and w[6].sum() == 1


def test_patches_are_centred_and_contrast_normalised():
    rng = np.random.default_rng(0)
    images = [natural.whiten(rng.normal(size=(64, 80)).cumsum(0).cumsum(1))]
    p = natural.extract_patches(images, 8, 500, rng)
    assert p.shape == (500, 8, 8)
    np.testing.assert_allclose(p.mean(axis=(1, 2)), 0, atol=1e-5)
    assert 0.7 < p.std(axis=(1, 2)).mean() <= 1.0


def tiny_config(**train) -> RunConfig:
    return RunConfig.model_validate(deep_merge(PRESETS[0]["config"], {
        # plain global filters: with the preset's retinotopic windows SGD at lr 10 grows without reaching NaN
        "data": {"pool_size": 1000}, "model": {"units": 16, "groups": {"pool": 2, "stride": 2}, "retinotopy": None},
        "train": {"steps": 60, "batch_size": 32, "frame_every_steps": 20, "frame_every_seconds": 100, **train}}))


def test_loop_emits_frames_on_cadence_and_exports_weights():
    rec = Recorder()
    assert train(tiny_config(), rec) == "succeeded"
    assert [f["step"] for f in rec.frames] == [0, 20, 40, 60]
    assert set(rec.frames[-1]["metrics"]) >= {"loss", "reconstruction", "group_sparsity"}
    weights = rec.checkpoints[-1][1]
    assert weights["W_d"].shape == (144, 16) and tuple(weights["grid_shape"]) == (4, 4)


def test_resume_from_checkpoint_continues_exactly():
    straight = Recorder()
    train(tiny_config(), straight)
    first = Recorder(stop_after=20)
    assert train(tiny_config(), first) == "cancelled"
    state = first.checkpoints[-1][0]
    assert state["step"] == 20
    resumed = Recorder()
    train(tiny_config(), resumed, resume=state)
    assert [f["step"] for f in resumed.frames] == [20, 40, 60]
    np.testing.assert_allclose(resumed.checkpoints[-1][1]["W_d"], straight.checkpoints[-1][1]["W_d"], rtol=1e-5, atol=1e-6)


def test_divergence_raises_with_the_reason():
    with pytest.raises(TrainingDiverged, match="became nan|became inf"):
        train(tiny_config(lr=10.0, optimizer="sgd", steps=400), Recorder())
