"""Measuring a topographic map from the filters alone (docs/models.md §7).

Per unit, from the power spectrum P(f) of its filter (zero-padded, DC removed):

    θ  = ½ arg Σ_f P(f) e^{2iφ(f)}           preferred orientation ∈ [0, π), φ(f) = atan2(f_row, f_col):
                                             the direction of the wave vector (across the stripes)
    r  = |Σ_f P(f) e^{2iφ(f)}| / Σ_f P(f)     selectivity ∈ [0, 1] (0: isotropic, 1: one orientation)
    ν  = Σ_f P(f)|f| / Σ_f P(f)              spatial frequency, cycles per pixel
    position = centre of mass of the filter's energy w², (row, col) in pixels

Angles use image axes (row down, col right). On a grid of units, c = r·e^{2iθ} and

    smoothness   = mean over grid neighbours of cos 2(θ_i − θ_j)   (0 random, 1 smooth)
    pin-wheels   = plaquettes (2×2 units) around which 2θ winds by ±2π
    Λ            = 1 / k*, k* the peak of the radially averaged power spectrum of c − ⟨c⟩ (grid units)
    ρ            = N_pinwheels · Λ² / area      (Kaschube et al. 2010: ρ ≈ π in cortex)

For trees: filter similarity |cos| between pairs on one branch (ancestor/descendant) versus
pairs on different branches, and how filters change with depth.
"""
from __future__ import annotations

from dataclasses import dataclass

import functools

import numpy as np


@dataclass
class UnitProperties:
    """Spectral properties of m filters; every array has length m (position: (m, 2))."""

    theta: np.ndarray
    selectivity: np.ndarray
    frequency: np.ndarray
    position: np.ndarray


@dataclass
class Pinwheel:
    row: float  # centre of the plaquette, grid units
    col: float
    handedness: int  # +1: θ increases counter-clockwise as drawn (row down), −1: clockwise


@dataclass
class OrientationMap:
    """Orientation map of units laid out on rows × cols; arrays are (rows, cols)."""

    theta: np.ndarray
    selectivity: np.ndarray
    frequency: np.ndarray
    position: np.ndarray  # (rows, cols, 2)

    @property
    def complex(self) -> np.ndarray:
        """c = r·e^{2iθ}."""
        return self.selectivity * np.exp(2j * self.theta)


@functools.lru_cache(maxsize=8)
def _half_spectrum_weights(size: int) -> np.ndarray:
    """Per rfft2 entry, the sum over it and its mirror in the full spectrum of 1, e^{2i·angle(k)} and |k|
    (k as fftfreq labels it, so the Nyquist row and column weigh exactly as in a full fft2)."""
    fr, fc = np.meshgrid(np.fft.fftfreq(size), np.fft.fftfreq(size), indexing="ij")
    radius = np.hypot(fr, fc)
    full = np.stack([np.ones_like(radius), np.where(radius > 0, np.exp(2j * np.arctan2(fr, fc)), 0), radius])
    half = size // 2 + 1
    mirror = full[:, (-np.arange(size)) % size][:, :, (-np.arange(half)) % size]
    self_mirrored = np.zeros(half, dtype=bool)  # columns whose mirror lies in the half itself
    self_mirrored[0] = True
    self_mirrored[-1] = size % 2 == 0
    out = full[:, :, :half] + np.where(self_mirrored, 0, mirror)
    return out.reshape(3, -1)


def unit_properties(filters: np.ndarray, pad_to: int = 32) -> UnitProperties:
    """θ, r, ν and position of every filter (m, h, w), from its zero-padded power spectrum.

    The power spectrum of a real filter is point-symmetric and so are the weights e^{2i·angle} and
    |k|, so the sums run over the half-spectrum of rfft2, columns other than 0 and Nyquist counted
    twice: the same moments as the full fft2 at half the work (this runs every live frame)."""
    f = np.asarray(filters, dtype=np.float32)
    m, h, w = f.shape
    size = max(pad_to, h, w)
    centred = f - f.mean(axis=(1, 2), keepdims=True)
    spectrum = np.fft.rfft2(centred, s=(size, size))  # (m, size, size // 2 + 1)
    power = spectrum.real**2 + spectrum.imag**2
    weights = _half_spectrum_weights(size)  # (3, size·(size//2+1)): count, e^{2i·angle}, |k|
    power = power.reshape(m, -1).astype(np.float64)  # (m, size·(size//2+1))
    total = power @ weights[0].real + 1e-20
    moment = (power @ weights[1]) / total
    frequency = (power @ weights[2].real) / total
    energy = f.astype(np.float64) ** 2
    mass = energy.sum(axis=(1, 2)) + 1e-20
    rows, cols = np.mgrid[0:h, 0:w]
    position = np.stack([(energy * rows).sum(axis=(1, 2)) / mass, (energy * cols).sum(axis=(1, 2)) / mass], axis=1)
    return UnitProperties(theta=np.mod(np.angle(moment) / 2, np.pi), selectivity=np.abs(moment),
                          frequency=frequency, position=position)


def orientation_map(filters: np.ndarray, grid: tuple[int, int]) -> OrientationMap:
    """Unit properties of filters (rows·cols, h, w), laid out row-major on the grid."""
    rows, cols = grid
    p = unit_properties(filters)
    return OrientationMap(theta=p.theta.reshape(rows, cols), selectivity=p.selectivity.reshape(rows, cols),
                          frequency=p.frequency.reshape(rows, cols), position=p.position.reshape(rows, cols, 2))


def smoothness(theta: np.ndarray, wrap: bool = False) -> float:
    """Mean cos 2(θ_i − θ_j) over horizontal and vertical neighbours of a (rows, cols) map."""
    if wrap:
        pairs = [theta - np.roll(theta, 1, axis=0), theta - np.roll(theta, 1, axis=1)]
    else:
        pairs = [np.diff(theta, axis=0), np.diff(theta, axis=1)]
    return float(np.concatenate([np.cos(2 * d).ravel() for d in pairs]).mean())


def orientation_entropy(theta: np.ndarray, selectivity: np.ndarray | None = None, threshold: float = 0.3,
                        bins: int = 12) -> float:
    """Entropy of the histogram of θ over [0, π) in `bins` bins, divided by log(bins): 1 when every
    orientation is equally common, 0 when all units share one. Only units with selectivity > threshold
    count when selectivity is given."""
    th = np.asarray(theta, dtype=np.float64).ravel()
    if selectivity is not None:
        th = th[np.asarray(selectivity).ravel() > threshold]
    if th.size == 0:
        return 0.0
    p = np.histogram(np.mod(th, np.pi), bins=bins, range=(0, np.pi))[0] / th.size
    p = p[p > 0]
    return float(-(p * np.log(p)).sum() / np.log(bins))


def _wrapped(d: np.ndarray) -> np.ndarray:
    return np.angle(np.exp(1j * d))  # into (−π, π]


def winding(theta: np.ndarray) -> np.ndarray:
    """Winding of 2θ around every plaquette, in turns: (rows−1, cols−1) array of −1, 0 or +1.

    The loop runs counter-clockwise as the map is drawn (row down): (r, c) → (r+1, c) →
    (r+1, c+1) → (r, c+1) → (r, c).
    """
    a = 2 * theta
    loop = (_wrapped(a[1:, :-1] - a[:-1, :-1]) + _wrapped(a[1:, 1:] - a[1:, :-1])
            + _wrapped(a[:-1, 1:] - a[1:, 1:]) + _wrapped(a[:-1, :-1] - a[:-1, 1:]))
    return np.rint(loop / (2 * np.pi)).astype(int)


def find_pinwheels(theta: np.ndarray) -> list[Pinwheel]:
    """Pin-wheels of a (rows, cols) orientation map: plaquettes where 2θ winds by ±2π."""
    w = winding(theta)
    return [Pinwheel(row=r + 0.5, col=c + 0.5, handedness=int(w[r, c])) for r, c in zip(*np.nonzero(w))]


def column_spacing(c: np.ndarray, pad: int = 4) -> float:
    """Λ (grid units): 1 / the peak wavenumber of the radially averaged power spectrum of c − ⟨c⟩.

    The map is zero-padded `pad`-fold so the peak is located finer than the grid's own
    frequency step; wavenumbers below one cycle per map are ignored.
    """
    rows, cols = c.shape
    size = pad * max(rows, cols)
    power = np.abs(np.fft.fft2(c - c.mean(), s=(size, size))) ** 2
    k = np.hypot(*np.meshgrid(np.fft.fftfreq(size), np.fft.fftfreq(size), indexing="ij"))
    step = 1.0 / size
    bins = np.rint(k / step).astype(int)
    radial = np.bincount(bins.ravel(), power.ravel()) / np.maximum(np.bincount(bins.ravel()), 1)
    kk = np.arange(len(radial)) * step
    valid = (kk >= 1.0 / max(rows, cols)) & (kk <= 0.5)
    peak = kk[valid][np.argmax(radial[valid])]
    return float(1.0 / peak)


def pinwheel_density(n_pinwheels: int, spacing: float, area: float) -> float:
    """ρ = N · Λ² / area (Λ and area in the same grid units)."""
    return float(n_pinwheels * spacing**2 / area)


@dataclass
class MapSummary:
    smoothness: float
    selective_fraction: float
    n_pinwheels: int
    n_left: int
    n_right: int
    spacing: float
    density: float

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def summarise(omap: OrientationMap, selective_threshold: float = 0.3, wrap: bool = False,
              pins: list[Pinwheel] | None = None) -> MapSummary:
    """Headline numbers of an orientation map (`pins`: its pin-wheels, when the caller has found them)."""
    pins = find_pinwheels(omap.theta) if pins is None else pins
    spacing = column_spacing(omap.complex)
    rows, cols = omap.theta.shape
    return MapSummary(smoothness=smoothness(omap.theta, wrap=wrap),
                      selective_fraction=float((omap.selectivity > selective_threshold).mean()),
                      n_pinwheels=len(pins), n_left=sum(p.handedness > 0 for p in pins),
                      n_right=sum(p.handedness < 0 for p in pins), spacing=spacing,
                      density=pinwheel_density(len(pins), spacing, (rows - 1) * (cols - 1)))


def _ancestors(parents: np.ndarray) -> list[set[int]]:
    out = []
    for i in range(len(parents)):
        chain, a = set(), int(parents[i])
        while a >= 0:
            chain.add(a)
            a = int(parents[a])
        out.append(chain)
    return out


def same_branch(parents) -> np.ndarray:
    """(m, m) bool: True where i ≠ j and one is an ancestor of the other."""
    parents = np.asarray(parents)
    m = len(parents)
    out = np.zeros((m, m), dtype=bool)
    for i, anc in enumerate(_ancestors(parents)):
        for a in anc:
            out[i, a] = out[a, i] = True
    return out


def depths(parents) -> np.ndarray:
    return np.array([len(a) for a in _ancestors(np.asarray(parents))])


def branch_similarity(filters: np.ndarray, parents) -> dict[str, float]:
    """Mean |cos| between flattened filters, and mean cos 2Δθ of their orientations: pairs on one
    branch (ancestor/descendant) vs pairs on different branches."""
    f = np.asarray(filters, dtype=np.float64).reshape(len(filters), -1)
    f = f / (np.linalg.norm(f, axis=1, keepdims=True) + 1e-12)
    sim = np.abs(f @ f.T)
    branch = same_branch(parents)
    across = ~branch & ~np.eye(len(f), dtype=bool)
    within_v = float(sim[branch].mean()) if branch.any() else float("nan")
    across_v = float(sim[across].mean()) if across.any() else float("nan")
    theta = unit_properties(np.asarray(filters)).theta
    ori = np.cos(2 * (theta[:, None] - theta[None, :]))  # orientation agreement, 1 same, −1 orthogonal
    return {"within": within_v, "across": across_v, "ratio": within_v / max(across_v, 1e-12),
            "orientation_within": float(ori[branch].mean()) if branch.any() else float("nan"),
            "orientation_across": float(ori[across].mean()) if across.any() else float("nan")}


def depth_profile(filters: np.ndarray, parents) -> dict[str, list[float]]:
    """Per tree level (root first): mean selectivity, mean spatial frequency, and mean |cos| to the parent."""
    props = unit_properties(filters)
    d = depths(parents)
    parents = np.asarray(parents)
    f = np.asarray(filters, dtype=np.float64).reshape(len(filters), -1)
    f = f / (np.linalg.norm(f, axis=1, keepdims=True) + 1e-12)
    to_parent = np.array([abs(f[i] @ f[p]) if p >= 0 else np.nan for i, p in enumerate(parents)])
    levels = range(d.max() + 1)
    return {"selectivity": [float(props.selectivity[d == k].mean()) for k in levels],
            "frequency": [float(props.frequency[d == k].mean()) for k in levels],
            "similarity_to_parent": [float(np.nanmean(to_parent[d == k])) if k else float("nan") for k in levels]}
