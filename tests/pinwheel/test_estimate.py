"""The memory estimate (pinwheel/configs/estimate.py) against what autograd really keeps for one batch."""
from __future__ import annotations

import pytest
import torch

from bench.step_check import build
from pinwheel.configs import PRESETS, RunConfig, deep_merge
from pinwheel.configs.estimate import _family

# presets trained through model.loss (autograd); the others run their own inference without a graph
AUTOGRAD = ["topographic-natural", "pinwheels-local", "conv-stack", "groups-1d-blocks"]


def saved_floats(cfg) -> int:
    """float32 values autograd saves for backward in one training loss of this config (parameters included)."""
    model, data, _, gen = build(cfg)
    x, y = data.batch(cfg.train.batch_size, gen)
    total = [0]

    def pack(t):
        total[0] += t.numel() * t.element_size() // 4
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model.loss(x, y, 10)
    return total[0]


@pytest.mark.parametrize("preset_id", AUTOGRAD)
@pytest.mark.parametrize("batch", [16, 256])
def test_activation_estimate_covers_autograd_and_is_not_far_above(preset_id, batch):
    """Too low, a run dies on allocation; far too high, the worker refuses a run that fits (the enveloped
    local-filter preset was counted as if it unfolded a k×k patch per unit: 7× what it keeps)."""
    preset = next(p for p in PRESETS if p["id"] == preset_id)
    cfg = RunConfig.model_validate(deep_merge(preset["config"], {"train": {"batch_size": batch}}))
    params, acts = _family(cfg.model, cfg.data, batch)
    kept = saved_floats(cfg)
    assert kept <= acts + params, (preset_id, kept, acts)
    assert acts <= 4.5 * kept, (preset_id, kept, acts)
