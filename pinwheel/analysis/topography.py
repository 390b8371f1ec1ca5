"""Measuring a topographic map from the filters alone (docs/models.md §7).

Per unit, from the power spectrum P(f) of its filter (zero-padded, DC removed):

    θ  = ½ arg Σ_f P(f) e^{2iφ(f)}           preferred orientation ∈ [0, π), φ(f) = atan2(f_row, f_col):
                                             the direction of the wave vector (across the stripes)
    r  = |Σ_f P(f) e^{2iφ(f)}| / Σ_f P(f)     selectivity ∈ [0, 1] (0: isotropic, 1: one orientation)
    ν  = Σ_f P(f)|f| / Σ_f P(f)              spatial frequency, cycles per pixel
    position = centre of mass of the filter's energy w², (row, col) in pixels

Angles use image axes (row down, col right). On a grid of units, c = r·e^{2iθ} and

    smoothness   = mean over grid neighbours of cos 2(θ_i − θ_j)   (0 random, 1 uniform)
    pin-wheels   = plaquettes (2×2 units) around which 2θ winds by ±2π (across the edges too on a torus)
    Λ            = 1 / k̄, k̄ the power-weighted mean wavenumber of c − ⟨c⟩ within a factor √2 of the
                   peak of its radially averaged power spectrum (grid units)
    ρ            = N_pinwheels · Λ² / area      (Kaschube et al. 2010: ρ ≈ π in cortex)
    ρ_band       = the same count on c band-passed around Λ (wavelengths 0.44 Λ … 1.76 Λ, Fermi edges), as
                   imaged maps are before pin-wheels are counted (Kaschube et al. 2010): unit-scale noise
                   adds pairs of pin-wheels the raw count takes for columns; both are reported

all over the map's valid region: a torus whole; a plain grid less a border band where its pools are
cut. With fewer than 2Λ across that region ρ is not given: "too few periods to count pin-wheels".

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


def winding(theta: np.ndarray, wrap: bool = False) -> np.ndarray:
    """Winding of 2θ around every plaquette, in turns: −1, 0 or +1 per plaquette, (rows−1, cols−1) of them
    on a plain grid, (rows, cols) on a torus (`wrap`: the last row and column close round to the first).

    The loop runs counter-clockwise as the map is drawn (row down): (r, c) → (r+1, c) →
    (r+1, c+1) → (r, c+1) → (r, c).
    """
    a = 2 * np.asarray(theta, dtype=np.float64)
    if wrap:
        a = np.pad(a, ((0, 1), (0, 1)), mode="wrap")  # row and column 0 again after the last
    loop = (_wrapped(a[1:, :-1] - a[:-1, :-1]) + _wrapped(a[1:, 1:] - a[1:, :-1])
            + _wrapped(a[:-1, 1:] - a[1:, 1:]) + _wrapped(a[:-1, :-1] - a[:-1, 1:]))
    return np.rint(loop / (2 * np.pi)).astype(int)


def find_pinwheels(theta: np.ndarray, wrap: bool = False) -> list[Pinwheel]:
    """Pin-wheels of a (rows, cols) orientation map: plaquettes where 2θ winds by ±2π (also the plaquettes
    across the edges with `wrap`; a plaquette's centre is (r + ½, c + ½), so those sit at rows − ½)."""
    w = winding(theta, wrap)
    return [Pinwheel(row=r + 0.5, col=c + 0.5, handedness=int(w[r, c])) for r, c in zip(*np.nonzero(w))]


def column_spacing(c: np.ndarray, pad: int = 4, wrap: bool = False) -> float:
    """Λ (grid units) = 1 / k̄: k̄ the power-weighted mean wavenumber of c − ⟨c⟩ over the band
    [k*/√2, k*·√2] around k*, the peak of its radially averaged power spectrum.

    A plain map is zero-padded `pad`-fold so the peak is located finer than the grid's own frequency step;
    a torus (`wrap`) is periodic, its spectrum lives exactly on the lattice k = (n, m)/side, and padding would
    only add the seam's leakage, so it is used as is. Wavenumbers below one cycle per map are ignored.
    """
    rows, cols = c.shape
    if wrap:
        fr, fc = np.meshgrid(np.fft.fftfreq(rows), np.fft.fftfreq(cols), indexing="ij")
        power = np.abs(np.fft.fft2(c - c.mean())) ** 2
        step = 1.0 / max(rows, cols)
    else:
        size = pad * max(rows, cols)
        fr, fc = np.meshgrid(np.fft.fftfreq(size), np.fft.fftfreq(size), indexing="ij")
        power = np.abs(np.fft.fft2(c - c.mean(), s=(size, size))) ** 2
        step = 1.0 / size
    k = np.hypot(fr, fc)
    bins = np.rint(k / step).astype(int)
    radial = np.bincount(bins.ravel(), power.ravel()) / np.maximum(np.bincount(bins.ravel()), 1)
    kk = np.arange(len(radial)) * step
    valid = (kk >= 1.0 / max(rows, cols) - 1e-12) & (kk <= 0.5)
    if not valid.any() or radial[valid].max() <= 0:
        return float("nan")
    peak = kk[valid][np.argmax(radial[valid])]
    band = (k >= peak / np.sqrt(2)) & (k <= peak * np.sqrt(2)) & (k >= 1.0 / max(rows, cols) - 1e-12)
    mean_k = (power * k)[band].sum() / power[band].sum()
    return float(1.0 / mean_k)


BAND = (0.44, 1.76)  # wavelengths passed, in units of Λ (Kaschube et al. 2010's filters, 0.3 … 1.2 mm at Λ ≈ 0.68 mm)


def bandpass(c: np.ndarray, spacing: float, wrap: bool = False, band: tuple[float, float] = BAND,
             edge: float = 0.05) -> np.ndarray:
    """c filtered in the Fourier domain by a Fermi band-pass that keeps wavenumbers 1/(band[1]·Λ) … 1/(band[0]·Λ)
    (cycles per unit), each edge a logistic of width `edge`/Λ: removes both the unit-scale noise and the trends
    longer than a column. On a torus the FFT is exact; a plain map is mirrored (no jump at its edges) first."""
    c = np.asarray(c, dtype=complex)
    rows, cols = c.shape
    x = c if wrap else np.block([[c, c[:, ::-1]], [c[::-1, :], c[::-1, ::-1]]])  # even extension: periodic
    fr, fc = np.meshgrid(np.fft.fftfreq(x.shape[0]), np.fft.fftfreq(x.shape[1]), indexing="ij")
    k = np.hypot(fr, fc) * spacing  # cycles per Λ
    lo, hi, w = 1.0 / band[1], 1.0 / band[0], edge
    gain = 1 / (1 + np.exp(np.clip((k - hi) / w, -60, 60))) * (1 - 1 / (1 + np.exp(np.clip((k - lo) / w, -60, 60))))
    gain[0, 0] = 0.0  # the map's mean: no column at all
    return np.fft.ifft2(np.fft.fft2(x) * gain)[:rows, :cols]


def pinwheel_density(n_pinwheels: int, spacing: float, area: float) -> float:
    """ρ = N · Λ² / area (Λ and area in the same grid units)."""
    return float(n_pinwheels * spacing**2 / area)


TOO_FEW_PERIODS = "too few periods to count pin-wheels"
MIN_PERIODS = 2.0  # the valid map must span at least this many Λ on its shorter side for ρ to be given


def valid_region(shape: tuple[int, int], border: int, wrap: bool) -> tuple[slice, slice]:
    """Rows and columns of the map where it is valid: all of a torus; a plain grid less `border` units
    along every edge (there the pools are cut and the map is pulled together less)."""
    rows, cols = shape
    if wrap or border <= 0:
        return slice(0, rows), slice(0, cols)
    if rows - 2 * border < 2 or cols - 2 * border < 2:
        raise ValueError(f"border: {border} units off every edge leaves no map of {rows}×{cols}")
    return slice(border, rows - border), slice(border, cols - border)


@dataclass
class MapSummary:
    smoothness: float
    selective_fraction: float
    n_pinwheels: int  # in the valid region
    n_left: int
    n_right: int
    spacing: float  # Λ, grid units, from the valid region
    density: float | None  # ρ = N Λ² / area; None when the valid region spans fewer than MIN_PERIODS · Λ
    periods: float = float("nan")  # hypercolumns per side: the valid region's shorter side / Λ
    area: float = float("nan")  # plaquettes searched for pin-wheels
    border: int = 0  # units left out along every edge (0 on a torus)
    wrap: bool = False
    note: str | None = None  # TOO_FEW_PERIODS when density is None
    n_pinwheels_bandpassed: int | None = None  # counted on the map band-passed around Λ (`bandpass`)
    density_bandpassed: float | None = None  # their ρ; None with `density`

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def summarise(omap: OrientationMap, selective_threshold: float = 0.3, wrap: bool = False,
              pins: list[Pinwheel] | None = None, border: int = 0) -> MapSummary:
    """Headline numbers of an orientation map, all over its valid region (`valid_region`): on a torus the
    whole map with pairs and plaquettes across the edges, on a plain grid the map less `border` units along
    each edge. `pins`: the pin-wheels of the whole map, when the caller has found them (those in the valid
    region are counted). The density needs MIN_PERIODS · Λ across the valid region, else it is None and
    `note` says why."""
    pins = find_pinwheels(omap.theta, wrap) if pins is None else pins
    rows_s, cols_s = valid_region(omap.theta.shape, border, wrap)
    theta, sel, c = omap.theta[rows_s, cols_s], omap.selectivity[rows_s, cols_s], omap.complex[rows_s, cols_s]
    rows, cols = theta.shape
    r0, c0 = rows_s.start, cols_s.start
    # a plaquette is inside when all four of its corners are: centres from r0 + ½ to r0 + rows − 1.5
    inside = [p for p in pins if wrap or (r0 < p.row < r0 + rows - 1 and c0 < p.col < c0 + cols - 1)]
    spacing = column_spacing(c, wrap=wrap)
    area = float(rows * cols if wrap else (rows - 1) * (cols - 1))
    periods = min(rows, cols) / spacing if np.isfinite(spacing) else 0.0
    enough = periods >= MIN_PERIODS
    n_band = None
    if enough:  # the band-passed map's pin-wheels, in the same plaquettes as the raw count
        w = winding(np.angle(bandpass(c, spacing, wrap)) / 2, wrap)
        n_band = int(np.count_nonzero(w))
    return MapSummary(smoothness=smoothness(theta, wrap=wrap),
                      selective_fraction=float((sel > selective_threshold).mean()),
                      n_pinwheels=len(inside), n_left=sum(p.handedness > 0 for p in inside),
                      n_right=sum(p.handedness < 0 for p in inside), spacing=spacing,
                      density=pinwheel_density(len(inside), spacing, area) if enough else None,
                      periods=float(periods), area=area, border=0 if wrap else border, wrap=wrap,
                      note=None if enough else TOO_FEW_PERIODS, n_pinwheels_bandpassed=n_band,
                      density_bandpassed=pinwheel_density(n_band, spacing, area) if enough else None)


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
