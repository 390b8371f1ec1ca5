"""Panel producers, keyed by kind: model state → JSON-able payload.

Each kind here has a JavaScript renderer of the same name in frontend/js/panels/<kind>.js;
tests/test_panel_registry.py keeps the two in step. A producer runs only for models that list its
kind in `panel_kinds`.
"""
from __future__ import annotations

from . import filter_grid, group_activations, reconstructions, sparsity, topographic_map

PANELS = {
    "filter_grid": filter_grid.produce,
    "group_activations": group_activations.produce,
    "topographic_map": topographic_map.produce,
    "reconstructions": reconstructions.produce,
    "sparsity": sparsity.produce,
}


def produce_panels(model, probe_x) -> dict[str, dict]:
    return {kind: PANELS[kind](model, probe_x) for kind in model.panel_kinds if kind in PANELS}
