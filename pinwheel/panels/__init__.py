"""Panel producers, keyed by kind: model state → JSON-able payload.

Each kind here has a JavaScript renderer of the same name in frontend/js/panels/<kind>.js;
tests/test_panel_registry.py keeps the two in step. A producer runs only for models that list its
kind in `panel_kinds`.

Streaming cost: the kinds in MIN_INTERVAL are slow to compute and change slowly, so each is
recomputed at most once per its interval (seconds); a frame in between carries the last payload
of that kind again, marked `as_of_step` (the step it was computed at), so every frame still holds
every panel and the timeline stays whole. The other kinds (the filters, reconstructions,
sparsity) are computed for every frame.

A producer may return None where its measure is undefined for the model (the orientation map of
units with no spatial layout): the kind is then left out of the frame, not faked.
"""
from __future__ import annotations

import inspect
import time
import weakref

from . import (drsae_units, filter_grid, group_activations, interaction_matrix, reconstructions, sparsity,
               topographic_map, tree_inhibition)

PANELS = {
    "filter_grid": filter_grid.produce,
    "group_activations": group_activations.produce,
    "topographic_map": topographic_map.produce,
    "reconstructions": reconstructions.produce,
    "sparsity": sparsity.produce,
    "tree_inhibition": tree_inhibition.produce,
    "interaction_matrix": interaction_matrix.produce,
    "drsae_units": drsae_units.produce,
}

MIN_INTERVAL = {"topographic_map": 1.0, "tree_inhibition": 1.0, "interaction_matrix": 1.0, "drsae_units": 1.0}

# kinds that fit only some models of a family (a tree layout needs a tree): module.applies(model)
_APPLIES = {k: getattr(m, "applies") for k, m in (("tree_inhibition", tree_inhibition),
                                                  ("interaction_matrix", interaction_matrix))}
_WANTS_LABELS = {k for k, f in PANELS.items() if "probe_y" in inspect.signature(f).parameters}
_last: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # model → {kind: (clock, step, payload)}


def produce_panels(model, probe_x, probe_y=None, *, step: int | None = None, fresh: bool = False,
                   clock=time.monotonic) -> dict[str, dict]:
    """Every panel of the model for one frame. `step` (the frame's step) enables reuse of the slow
    kinds between their intervals; without it, or with `fresh` (a run's last frame), every kind is computed."""
    now = clock()
    last = _last.setdefault(model, {})
    out = {}
    for kind in model.panel_kinds:
        if kind not in PANELS or (kind in _APPLIES and not _APPLIES[kind](model)):
            continue
        prev = last.get(kind)
        interval = MIN_INTERVAL.get(kind)
        if step is not None and not fresh and interval and prev is not None and now - prev[0] < interval and prev[1] < step:
            out[kind] = {**prev[2], "as_of_step": prev[1]}
            continue
        payload = PANELS[kind](model, probe_x, probe_y) if kind in _WANTS_LABELS else PANELS[kind](model, probe_x)
        if payload is None:  # undefined for this model: absent, not faked
            continue
        out[kind] = payload
        if step is not None and interval:
            last[kind] = (now, step, payload)
    return out
