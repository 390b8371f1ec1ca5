"""The conv stack's linear probe is fitted off the training thread, on a copy of the weights of its step."""
from __future__ import annotations

import threading

import torch

from pinwheel.configs import RunConfig, deep_merge, preset_by_id
from pinwheel.data import build_dataset
from pinwheel.models import build_model, conv_stack


def small_stack():
    cfg = RunConfig.model_validate(deep_merge(preset_by_id("conv-stack")["config"], {
        "model": {"probe_train": 100, "probe_every_steps": 10}, "data": {"train_size": 200, "test_size": 60}}))
    data = build_dataset(cfg.data, 0)
    return build_model(cfg.model, data, torch.Generator().manual_seed(0)), data


def test_probe_runs_on_the_probe_thread_and_never_blocks_a_frame_that_is_not_due(monkeypatch):
    model, data = small_stack()
    release, fits = threading.Event(), []
    real = conv_stack._probe

    def slow_probe(*args):
        fits.append(threading.current_thread().name)
        assert release.wait(30)
        return real(*args)

    monkeypatch.setattr(conv_stack, "_probe", slow_probe)
    model._step = 0
    assert model.frame_metrics(data) == {}  # due: started, not waited for (the fit is held until released)
    model._step = 5
    assert model.frame_metrics(data) == {}  # not due, still fitting: the frame goes on without it
    release.set()
    model._step = 10
    metrics = model.frame_metrics(data)  # due again: waits for the running fit (back-pressure), shows it
    assert set(metrics) == {"probe_pixels", "probe_layer1", "probe_layer2", "probe_all_layers"}
    assert fits and all(name.startswith("pinwheel-probe") for name in fits)


def test_probe_fits_the_weights_of_the_step_it_was_started_at():
    model, data = small_stack()
    expected = model.probe_accuracies(data)  # the stack as built, fitted on this thread
    model._step = 0
    model.frame_metrics(data)  # starts a fit on a copy of these weights ...
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(-3.0)  # ... which training then changes under it
    model._step = 10
    assert model.frame_metrics(data) == expected
