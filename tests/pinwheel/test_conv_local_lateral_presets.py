"""The conv-stack, local-filters and lateral configs (refused naming the field) and their presets trained end to end, tiny."""
from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from tests.conftest import Recorder
from pinwheel.configs import RunConfig, deep_merge, preset_by_id
from pinwheel.train import train


# ---- validation ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("config, field", [
    ({"model": {"kind": "local_filters", "receptive_field": 40}, "data": {"kind": "natural_images", "image_size": 32}},
     "receptive_field"),
    ({"model": {"kind": "local_filters"}, "data": {"kind": "natural_patches"}}, "data.kind"),
    ({"model": {"kind": "lateral", "units": 30, "mask": {"kind": "tree", "branching": 3, "depth": 4}}}, "units"),
    ({"model": {"kind": "lateral", "beta": 0}}, "beta"),
    ({"model": {"kind": "lateral", "beta": -1.0}}, "beta"),
    ({"model": {"kind": "lateral", "units": 16, "mask": {"kind": "grid", "radius": 4}}}, "mask.radius"),
    ({"model": {"kind": "lateral", "beta": 0.01, "row_sum": 5}}, "row_sum"),
    ({"model": {"kind": "conv_stack", "layers": [{"kernel": 9}]},
      "data": {"kind": "sklearn_digits", "train_size": 1000, "test_size": 300}}, "kernel"),  # 1,797 digits in all
    ({"model": {"kind": "conv_stack", "layers": [{"maps": 10, "groups": {"kind": "blocks_1d", "size": 4}}]}},
     "groups.size"),
])
def test_invalid_configs_are_refused_naming_the_field(config, field):
    with pytest.raises(ValidationError) as err:
        RunConfig.model_validate(config)
    assert field in str(err.value)


# ---- end to end: every preset, tiny -----------------------------------------------------------------

TINY = {
    "conv-stack": ({"model": {"steps_per_layer": 6, "probe_train": 100, "probe_every_steps": 8},  # probes at 0 and 8
                    "data": {"train_size": 150, "test_size": 60}},
                   {"W_e_1", "W_d_1", "b_1", "g_1", "W_e_2", "W_d_2", "b_2", "g_2"}),
    "pinwheels-local": ({"model": {"grid": 6, "anneal_steps": 5}, "data": {"image_size": 12, "pool_size": 100}},
                        {"W_e", "W_d", "b", "grid_shape", "positions", "receptive_field"}),
    "lateral-tree": ({"data": {"pool_size": 1000}, "model": {"inference_steps": 10}}, {"W_d", "S", "tree_parents"}),
    "lateral-2d": ({"data": {"pool_size": 1000}, "model": {"units": 64, "row_sum": 1.0, "inference_steps": 10}},
                   {"W_d", "S", "grid_shape"}),
}


@pytest.mark.parametrize("preset_id", sorted(TINY))
def test_preset_trains_end_to_end(preset_id):
    override, names = TINY[preset_id]
    cfg = RunConfig.model_validate(deep_merge(preset_by_id(preset_id)["config"], deep_merge(override, {
        "train": {"steps": 12, "batch_size": 8, "frame_every_steps": 4, "frame_every_seconds": 100, "device": "cpu"}})))
    rec = Recorder()
    assert train(cfg, rec) == "succeeded"
    assert [f["step"] for f in rec.frames] == [0, 4, 8, 12]
    panel = rec.frames[-1]["panels"]["filter_grid"]
    assert panel["count"] > 0 and panel["atlas_png"]
    assert names <= set(rec.weights) and all(np.isfinite(v).all() for v in rec.weights.values())
    if preset_id == "conv-stack":
        assert {"probe_pixels", "probe_layer1", "probe_layer2"} <= set(rec.frames[-1]["metrics"])
