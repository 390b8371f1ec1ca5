"""What a run will need, from its config alone (torch-free: the backend quotes it at launch, the worker
checks it against its device before starting — worker/guards.py).

The memory estimate is deliberately coarse — the right order of magnitude, rounded up — counting:
parameters with their gradients and Adam's two moments (4 copies, float32), the data pool held on
the device, and the activations autograd keeps for one batch (a per-family multiple of batch × units).
It exists to refuse at once a run that cannot fit (units 16384, patch 32, batch 65536 needs tens of
GiB), not to tell 1.1 GiB from 1.3 GiB.
"""
from __future__ import annotations

import math

from .common import DigitsData, NaturalImagesData, NaturalPatchesData
from .local_filters import unit_grid_side

FLOAT = 4  # bytes; every family trains in float32
OVERHEAD = 256 * 1024**2  # the framework's own allocations (CUDA context excluded), kernels' scratch space


def input_side(data) -> int:
    if isinstance(data, NaturalPatchesData):
        return data.patch_size
    if isinstance(data, NaturalImagesData):
        return data.image_size
    return 8 if data.kind == "sklearn_digits" else 28


def data_elements(data) -> int:
    """float32 values of the training pool plus the test (held-out) split."""
    side = input_side(data)
    if isinstance(data, DigitsData):
        return (data.train_size + data.test_size) * side * side
    return (data.pool_size + data.heldout_size) * side * side  # the held-out set travels with the pool


def _family(model, data, batch: int) -> tuple[int, int]:
    """(parameters, activation values kept for one batch) of the model family."""
    d = input_side(data) ** 2
    kind = model.kind
    if kind == "group_sparse":
        m = model.units
        params = 2 * m * d + m
        if model.form == "sparse_coding":  # FISTA without autograd: a few code-sized buffers
            acts = batch * (6 * m + 2 * d)
        else:  # pre-activation, code, group energies, their gradients
            acts = batch * (8 * m + 3 * d)
        if model.retinotopy is not None:  # the windows, the windowed weights and their gradients: (m, d) each
            acts += 4 * m * d
        return params, acts
    if kind == "lateral":
        m = model.units
        return 2 * m * d + m * m, batch * (6 * m + 2 * d)
    if kind in ("drsae", "lista"):
        m, steps = model.units, model.steps
        params = 2 * m * d + m * m + 10 * m
        return params, batch * (3 * m * (steps + 1) + 3 * d)  # unrolled: every step's code is kept
    if kind == "local_filters":
        grid = unit_grid_side(input_side(data), model.receptive_field, model.stride, model.grid, model.wrap)
        units, k2 = grid * grid, model.receptive_field ** 2
        params = 2 * units * k2 + units
        if model.envelope_sigma is not None:  # no unfolding: two dense (units, d) matrices, their products, gradients
            return params, batch * (8 * units + 3 * d) + 8 * units * d
        return params, batch * (units * (k2 + 8) + 3 * d)  # unfolded patches per unit
    if kind == "conv_stack":
        side, channels, params, acts = input_side(data), 1, 0, 0
        for layer in model.layers:
            params += 2 * layer.maps * channels * layer.kernel ** 2 + layer.maps
            acts = max(acts, batch * (8 * layer.maps * side * side + 3 * channels * side * side))
            side, channels = (side - 1) // layer.pool_stride + 1, layer.maps // layer.groups.size
        return params, acts
    return 0, 0


def estimate_memory_bytes(config) -> int:
    """Peak device memory of a run of this RunConfig, roughly (see the module's note)."""
    params, acts = _family(config.model, config.data, config.train.batch_size)
    values = 4 * params + data_elements(config.data) + acts
    return int(values * FLOAT + OVERHEAD)


def gib(n: int | float) -> str:
    """'5.2 GiB' (one decimal; at least 0.1)."""
    return f"{max(math.ceil(n / 1024**3 * 10) / 10, 0.1):.1f} GiB"


__all__ = ["estimate_memory_bytes", "gib", "input_side", "data_elements"]
