"""Panels from plain arrays, for pinwheel.log: the project's own producers (pinwheel/panels), fed by a
stand-in model, so an external run's frames are the payloads the run page already draws.

Two halves:
- `check_arrays` runs on the user's thread: shapes are checked (one line naming the argument) and
  the arrays are copied to float32 numpy (the user's loop goes on changing its tensors). torch is
  never imported here: a tensor is recognised by its methods.
- `produce` runs on the logging thread. The producers' shared helpers import torch, so the import
  happens there, off the training loop, and only when panels are asked for.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np


class LogArgumentError(ValueError):
    """A run.log argument of the wrong shape or type; str() names the argument."""


def to_array(value, name: str) -> np.ndarray:
    """A float32 numpy copy of a numpy array, nested list, or torch tensor (any device)."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch tensor, without importing torch
        value = value.detach().cpu().float().numpy()
    try:
        arr = np.array(value, dtype=np.float32, copy=True)
    except (TypeError, ValueError) as exc:
        raise LogArgumentError(f"{name}: expected an array of numbers ({exc})") from None
    if not np.isfinite(arr).all():
        raise LogArgumentError(f"{name}: holds NaN or infinite values")
    return arr


def _side(d: int) -> int | None:
    s = math.isqrt(d)
    return s if s * s == d else None


@dataclass
class Arrays:
    """What one frame's panels are made from (already checked and copied)."""
    filters: np.ndarray | None = None  # (m, h, w)
    layout: dict = field(default_factory=lambda: {"type": "list"})
    codes: np.ndarray | None = None  # (batch, m)
    inputs: np.ndarray | None = None  # (batch, h*w)
    reconstructions: np.ndarray | None = None  # (batch, h*w)
    image_shape: tuple[int, int] | None = None


def _filters(filters, filter_shape) -> np.ndarray:
    w = to_array(filters, "filters")
    if w.ndim == 3:
        if filter_shape is not None and tuple(filter_shape) != w.shape[1:]:
            raise LogArgumentError(f"filters: shape {w.shape} does not match filter_shape={tuple(filter_shape)}")
        return w
    if w.ndim != 2:
        raise LogArgumentError(f"filters: expected (units, h, w) or (units, h*w), got shape {w.shape}")
    m, d = w.shape
    if filter_shape is not None:
        h, wd = (int(v) for v in filter_shape)
        if h * wd != d:
            raise LogArgumentError(f"filters: {d} values a filter do not fit filter_shape=({h}, {wd})")
        return w.reshape(m, h, wd)
    side = _side(d)
    if side is None:
        hint = " (a (h*w, units) decoder matrix? pass its transpose)" if _side(m) else ""
        raise LogArgumentError(f"filters: {d} values a filter is not a square image; pass filter_shape=(h, w){hint}")
    return w.reshape(m, side, side)


def _layout(layout, m: int) -> dict:
    if layout is None or layout == "list":
        return {"type": "list"}
    if layout == "grid":
        side = _side(m)
        if side is None:
            raise LogArgumentError(f"layout: 'grid' needs a square number of filters, got {m}; "
                                   "give (rows, cols) or use 'list'")
        return {"type": "grid", "rows": side, "cols": side}
    if isinstance(layout, tuple) and len(layout) == 2 and all(isinstance(v, int) for v in layout):
        rows, cols = layout
        if rows * cols != m:
            raise LogArgumentError(f"layout: a {rows}×{cols} grid holds {rows * cols} filters, got {m}")
        return {"type": "grid", "rows": rows, "cols": cols}
    if isinstance(layout, str):
        raise LogArgumentError(f"layout: expected 'grid', 'list', (rows, cols) or a tree's parents list, got {layout!r}")
    parents = [int(p) for p in np.asarray(layout).ravel()] if hasattr(layout, "__len__") else None
    if parents is None or len(parents) != m:
        raise LogArgumentError(f"layout: a tree's parents list needs one entry a filter ({m}), "
                               f"got {len(parents) if parents is not None else type(layout).__name__}")
    for i, p in enumerate(parents):
        if not (p == -1 or 0 <= p < i):  # parents come before their children (-1: a root)
            raise LogArgumentError(f"layout: parents[{i}] = {p}; each parent must be -1 or an earlier unit")
    return {"type": "tree", "parents": parents}


def check_arrays(filters=None, layout="list", codes=None, inputs=None, reconstructions=None,
                 filter_shape=None) -> Arrays:
    out = Arrays()
    m = None
    if filters is not None:
        out.filters = _filters(filters, filter_shape)
        m = out.filters.shape[0]
        out.image_shape = out.filters.shape[1:]
        out.layout = _layout(layout, m)
    elif layout not in (None, "list"):
        raise LogArgumentError("layout: given without filters")
    if codes is not None:
        z = to_array(codes, "codes")
        if z.ndim == 1:
            z = z[None, :]
        if z.ndim != 2 or (m is not None and z.shape[1] != m):
            want = f"(batch, {m})" if m is not None else "(batch, units)"
            raise LogArgumentError(f"codes: expected {want}, got shape {z.shape}")
        out.codes = z
    if (inputs is None) != (reconstructions is None):
        missing = "reconstructions" if reconstructions is None else "inputs"
        raise LogArgumentError(f"{missing}: inputs and reconstructions go together; give both")
    if inputs is not None:
        x, x_hat = to_array(inputs, "inputs"), to_array(reconstructions, "reconstructions")
        if x.ndim == 3:
            shape = x.shape[1:]
        elif x.ndim == 2:
            if out.image_shape is not None and x.shape[1] != int(np.prod(out.image_shape)):
                raise LogArgumentError(f"inputs: {x.shape[1]} values an example do not match the filters' "
                                       f"{tuple(out.image_shape)}")
            shape = out.image_shape or ((_side(x.shape[1]),) * 2 if _side(x.shape[1]) else filter_shape)
            if shape is None:
                raise LogArgumentError(f"inputs: {x.shape[1]} values an example is not a square image; "
                                       "pass filter_shape=(h, w)")
        else:
            raise LogArgumentError(f"inputs: expected (batch, h*w) or (batch, h, w), got shape {x.shape}")
        shape = tuple(int(v) for v in shape)
        if out.image_shape is not None and shape != tuple(out.image_shape):
            raise LogArgumentError(f"inputs: examples of {shape} do not match the filters' {tuple(out.image_shape)}")
        if x_hat.shape != x.shape:
            raise LogArgumentError(f"reconstructions: shape {x_hat.shape} differs from the inputs' {x.shape}")
        if out.codes is not None and out.codes.shape[0] != x.shape[0]:
            raise LogArgumentError(f"codes: {out.codes.shape[0]} examples but {x.shape[0]} inputs")
        out.inputs, out.reconstructions = x.reshape(len(x), -1), x_hat.reshape(len(x), -1)
        out.image_shape = shape
    return out


_stamps = itertools.count()


class _Stamp:
    """Stands for a parameter: the producers' memo keys on parameters' `_version`, new every frame."""
    def __init__(self):
        self._version = next(_stamps)


class ArrayModel:
    """The attributes pinwheel/panels producers read from a model, answered from one frame's arrays."""

    def __init__(self, arrays: Arrays):
        self.arrays = arrays
        self.input_shape = arrays.image_shape
        self.panel_kinds = [k for k, have in (("filter_grid", arrays.filters is not None),
                                              ("reconstructions", arrays.inputs is not None),
                                              ("sparsity", arrays.codes is not None)) if have]
        self._stamp = _Stamp()

    def parameters(self):
        return iter([self._stamp])

    def filter_bank(self) -> dict:
        return {"filters": self.arrays.filters, "layout": dict(self.arrays.layout)}

    def encode(self, x):
        z = self.arrays.codes
        return z[:len(x)] if z is not None else np.zeros((len(x), 0), np.float32)

    def decode(self, z):
        return self.arrays.reconstructions[:len(z)]


def produce(arrays: Arrays) -> dict[str, dict]:
    """Every panel the arrays allow, by the project's producers (the filter atlas, reconstructions, sparsity)."""
    from .panels import produce_panels  # imports torch (the producers' helpers): on this thread, once

    model = ArrayModel(arrays)
    if not model.panel_kinds:
        return {}
    probe = arrays.inputs if arrays.inputs is not None else (
        arrays.codes if arrays.codes is not None else np.zeros((1, 0), np.float32))
    return produce_panels(model, probe)
