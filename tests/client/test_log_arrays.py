"""pinwheel.log's array checks and panels (no server): wrong shapes named, payloads the renderers draw."""
from __future__ import annotations

import base64
import io
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from pinwheel._client_panels import LogArgumentError, check_arrays, produce

RNG = np.random.default_rng(0)
W = RNG.standard_normal((64, 144)).astype(np.float32)  # 64 filters of 12×12
Z = np.abs(RNG.standard_normal((32, 64))).astype(np.float32) * (RNG.random((32, 64)) > 0.8)
X = RNG.standard_normal((32, 144)).astype(np.float32)


@pytest.mark.parametrize("kwargs, message", [
    ({"filters": W[:, :140]}, "filters: 140 values a filter is not a square image; pass filter_shape=(h, w)"),
    ({"filters": W[:60].T}, "filters: 60 values a filter is not a square image; pass filter_shape=(h, w) "
                            "(a (h*w, units) decoder matrix? pass its transpose)"),
    ({"filters": W[:60], "layout": "grid"}, "layout: 'grid' needs a square number of filters, got 60"),
    ({"filters": W, "layout": (4, 8)}, "layout: a 4×8 grid holds 32 filters, got 64"),
    ({"filters": W[:3], "layout": [-1, 0, 5]}, "layout: parents[2] = 5; each parent must be -1 or an earlier unit"),
    ({"filters": W[:3], "layout": [-1, 0]}, "layout: a tree's parents list needs one entry a filter (3), got 2"),
    ({"filters": W, "layout": "spiral"}, "layout: expected 'grid', 'list', (rows, cols) or a tree's parents list"),
    ({"filters": W, "codes": Z[:, :10]}, "codes: expected (batch, 64), got shape (32, 10)"),
    ({"filters": W, "inputs": X}, "reconstructions: inputs and reconstructions go together"),
    ({"filters": W, "inputs": X[:, :100], "reconstructions": X[:, :100]}, "inputs: 100 values an example do not match the filters' (12, 12)"),
    ({"inputs": X, "reconstructions": X[:5]}, "reconstructions: shape (5, 144) differs from the inputs' (32, 144)"),
    ({"filters": W * np.nan}, "filters: holds NaN or infinite values"),
    ({"filters": "abc"}, "filters: expected an array of numbers"),
])
def test_wrong_shapes_name_the_argument(kwargs, message):
    with pytest.raises(LogArgumentError) as err:
        check_arrays(**kwargs)
    assert str(err.value).startswith(message)


def decode(png: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(png))))


def test_panels_from_arrays_are_the_producers_payloads():
    panels = produce(check_arrays(W, "grid", Z, X, 0.5 * X))
    assert set(panels) == {"filter_grid", "reconstructions", "sparsity"}
    grid = panels["filter_grid"]
    assert (grid["count"], grid["rows"], grid["cols"], grid["tile"]) == (64, 8, 8, [12, 12])
    atlas = decode(grid["atlas_png"])
    assert atlas.shape == (8 * 13 + 1, 8 * 13 + 1)  # 8×8 tiles of 12 px with 1 px pads
    # the tile of unit 9 (row 1, col 1) is that filter, contrast-normalised: its brightest pixel is its largest weight
    tile = atlas[1 + 13:1 + 13 + 12, 1 + 13:1 + 13 + 12].astype(float)
    assert np.unravel_index(tile.argmax(), tile.shape) == np.unravel_index(W[9].argmax(), (12, 12))
    np.testing.assert_allclose(grid["stats"]["active"], (Z > 1e-6).mean(axis=0), atol=1e-3)
    recon = panels["reconstructions"]
    assert recon["count"] == 10 and recon["rel_error_mean"] == pytest.approx(0.25, abs=1e-3)
    sparsity = panels["sparsity"]
    assert sparsity["units"] == 64 and sparsity["l0_mean"] == pytest.approx((Z > 1e-6).sum(1).mean(), abs=1e-3)


def test_tree_and_list_layouts():
    parents = [-1, 0, 0, 1, 1, 2, 2]
    tree = produce(check_arrays(W[:7], parents))["filter_grid"]
    assert tree["layout"]["type"] == "tree" and tree["layout"]["parents"] == parents and len(tree["tiles"]) == 7
    listed = produce(check_arrays(W[:10].reshape(10, 12, 12), "list"))["filter_grid"]
    assert listed["layout"]["type"] == "list" and listed["count"] == 10 and "stats" in listed


def test_importing_the_client_side_does_not_import_torch():
    code = "import sys, pinwheel.log, pinwheel.client, pinwheel.cli; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
