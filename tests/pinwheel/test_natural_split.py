"""The held-out split of natural patches and images: disjoint pixel regions, deterministic per seed."""
from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from pinwheel.configs import NaturalImagesData, NaturalPatchesData
from pinwheel.data import build_dataset, natural


def photos(seed: int = 0) -> list[np.ndarray]:
    """Brownian 'photographs' of several shapes (landscape, portrait, square)."""
    rng = np.random.default_rng(seed)
    return [rng.normal(size=shape).cumsum(0).cumsum(1) for shape in ((60, 90), (100, 50), (64, 64))]


def covered(box: tuple[slice, slice], shape) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    mask[box] = True
    return mask


@pytest.mark.parametrize("shape", [(60, 90), (100, 50), (64, 64), (300, 451), (512, 512)])
@pytest.mark.parametrize("size", [4, 12, 32])
def test_regions_are_disjoint_cover_the_photograph_and_hold_a_patch_each(shape, size):
    boxes = natural.split_boxes(shape, size)
    train, held = covered(boxes["train"], shape), covered(boxes["heldout"], shape)
    assert not (train & held).any() and (train | held).all()
    for mask in (train, held):
        rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
        assert len(rows) >= size and len(cols) >= size
    assert held.sum() >= natural.HELDOUT_FRACTION * train.size - max(shape)  # about a fifth, rounded up


def test_no_heldout_patch_shares_a_pixel_with_the_training_domain():
    raw, size = photos(), 8
    regions = natural.split_photographs(raw, size)
    _, train_at = natural.sample_patches(regions["train"], size, 2000, np.random.default_rng(1))
    _, held_at = natural.sample_patches(regions["heldout"], size, 2000, natural.heldout_rng(1))
    boxes = [natural.split_boxes(im.shape, size) for im in raw]
    train_domain = [covered(b["train"], im.shape) for b, im in zip(boxes, raw)]
    for where, name in ((train_at, "train"), (held_at, "heldout")):
        for k, r, c in where:
            rows, cols = boxes[k][name]
            patch = np.zeros(raw[k].shape, dtype=bool)
            patch[rows.start + r:rows.start + r + size, cols.start + c:cols.start + c + size] = True
            assert covered(boxes[k][name], raw[k].shape)[patch].all()  # inside its own region
            assert train_domain[k][patch].all() == (name == "train")
            assert not train_domain[k][patch].any() or name == "train"
    assert set(held_at[:, 0]) == {0, 1, 2}  # every photograph is represented in the held-out set


def test_heldout_pixels_never_reach_the_training_pool():
    """Each region is whitened on its own: scribbling over the held-out regions leaves training patches unchanged."""
    raw, size = photos(), 8
    scribbled = [im.copy() for im in raw]
    for im in scribbled:
        im[natural.split_boxes(im.shape, size)["heldout"]] = np.random.default_rng(5).normal(size=1)[0] * 100
    a = natural.extract_patches(natural.split_photographs(raw, size)["train"], size, 300, np.random.default_rng(0))
    b = natural.extract_patches(natural.split_photographs(scribbled, size)["train"], size, 300, np.random.default_rng(0))
    np.testing.assert_array_equal(a, b)
    c = natural.extract_patches(natural.split_photographs(scribbled, size)["heldout"], size, 300, natural.heldout_rng(0))
    d = natural.extract_patches(natural.split_photographs(raw, size)["heldout"], size, 300, natural.heldout_rng(0))
    assert not np.allclose(c, d)


def test_heldout_patches_are_deterministic_per_seed_shaped_and_not_in_the_training_pool():
    a = natural.heldout_patches(8, 300, seed=3)
    assert a.shape == (300, 8, 8) and a.dtype == np.float32
    np.testing.assert_array_equal(a, natural.heldout_patches(8, 300, seed=3))
    assert not np.allclose(a, natural.heldout_patches(8, 300, seed=4))
    train, held = natural.patch_splits(8, 2000, 300, seed=3)
    np.testing.assert_array_equal(held, a)
    np.testing.assert_array_equal(train, natural.training_patches(8, 2000, seed=3))
    distance = ((train[:, None] - held[None]) ** 2).sum(axis=(2, 3))  # (2000, 300)
    assert distance.min() > 1e-3  # no held-out patch is a training patch


def test_a_run_gets_its_heldout_set_as_x_test():
    patches = build_dataset(NaturalPatchesData(patch_size=6, pool_size=1000, heldout_size=120), seed=2)
    assert patches.x.shape == (1000, 36) and patches.x_test.shape == (120, 36) and patches.y_test is None
    np.testing.assert_array_equal(patches.x_test.numpy().reshape(-1, 6, 6), natural.heldout_patches(6, 120, seed=2))
    images = build_dataset(NaturalImagesData(image_size=16, pool_size=100, heldout_size=20), seed=2)
    assert images.x.shape == (100, 256) and images.x_test.shape == (20, 256)


def test_bad_input_is_refused_with_the_field_named():
    with pytest.raises(ValueError, match="patch_size"):
        natural.split_photographs(photos(), 60)  # no photograph holds a 60-pixel patch in both regions
    with pytest.raises(ValueError, match="fraction"):
        natural.split_photographs(photos(), 8, fraction=1.0)
    with pytest.raises(ValueError, match="patch_size"):
        natural.sample_patches([np.zeros((5, 5))], 8, 3, np.random.default_rng(0))
    with pytest.raises(ValueError, match="count"):
        natural.sample_patches([np.zeros((20, 20))], 8, -1, np.random.default_rng(0))
    with pytest.raises(ValidationError, match="heldout_size"):
        NaturalPatchesData(heldout_size=5)
    with pytest.raises(ValidationError, match="heldout_size"):
        NaturalImagesData(heldout_size=10**6)
    assert natural.split_boxes((20, 40), 20) is not None  # 20 training + 20 held-out columns: the least that fits
    assert natural.split_boxes((20, 39), 20) is None and natural.split_boxes((19, 40), 20) is None
