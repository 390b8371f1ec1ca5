"""pinwheel/analysis/topography.py: orientation, spectra, pinwheels, smoothness and tree measures."""
from __future__ import annotations

import numpy as np
import pytest

from pinwheel import groups
from pinwheel.analysis import topography as T


# ---- topography analysis ----------------------------------------------------------------------------

def gabor(theta: float, size: int = 16, freq: float = 0.2, sigma: float = 3.0, phase: float = 0.3) -> np.ndarray:
    r, c = np.mgrid[0:size, 0:size] - (size - 1) / 2
    along = c * np.cos(theta) + r * np.sin(theta)  # wave vector (f_row, f_col) ∝ (sin θ, cos θ)
    return np.exp(-(r**2 + c**2) / (2 * sigma**2)) * np.cos(2 * np.pi * freq * along + phase)


def test_gabor_filters_of_known_orientation_give_that_orientation():
    thetas = np.linspace(0, np.pi, 12, endpoint=False)
    props = T.unit_properties(np.stack([gabor(t) for t in thetas]))
    err = np.angle(np.exp(2j * (props.theta - thetas))) / 2
    assert np.abs(err).max() < np.deg2rad(3)
    assert (props.selectivity > 0.8).all()
    np.testing.assert_allclose(props.frequency, 0.2, atol=0.03)
    np.testing.assert_allclose(props.position, 7.5, atol=0.5)
    blob = np.exp(-((np.mgrid[0:16, 0:16] - 7.5) ** 2).sum(0) / 8)
    assert T.unit_properties(blob[None]).selectivity[0] < 0.1  # isotropic: not selective


@pytest.mark.parametrize("shape,pad_to", [((20, 12, 12), 32), ((9, 7, 9), 7), ((5, 33, 33), 32)])
def test_spectral_moments_equal_the_sums_over_the_full_spectrum(shape, pad_to):
    """unit_properties sums over half the spectrum; the reference sums every entry of fft2 (odd and even sizes)."""
    f = np.random.default_rng(1).standard_normal(shape)
    size = max(pad_to, *shape[1:])
    power = np.abs(np.fft.fft2(f - f.mean(axis=(1, 2), keepdims=True), s=(size, size))) ** 2
    fr, fc = np.meshgrid(np.fft.fftfreq(size), np.fft.fftfreq(size), indexing="ij")
    radius = np.hypot(fr, fc)
    moment = (power * np.where(radius > 0, np.exp(2j * np.arctan2(fr, fc)), 0)).sum(axis=(1, 2)) / power.sum(axis=(1, 2))
    props = T.unit_properties(f, pad_to=pad_to)
    np.testing.assert_allclose(props.selectivity, np.abs(moment), atol=1e-6)
    np.testing.assert_allclose(np.exp(2j * props.theta), np.exp(1j * np.angle(moment)), atol=1e-5)
    np.testing.assert_allclose(props.frequency, (power * radius).sum(axis=(1, 2)) / power.sum(axis=(1, 2)), rtol=1e-6)


def test_orientation_entropy_of_uniform_and_single_orientations():
    assert T.orientation_entropy(np.linspace(0, np.pi, 120, endpoint=False)) == pytest.approx(1.0)
    assert T.orientation_entropy(np.full(50, 0.4)) == 0.0
    two = np.r_[np.full(30, 0.1), np.full(30, 1.7)]
    assert T.orientation_entropy(two) == pytest.approx(np.log(2) / np.log(12))
    assert T.orientation_entropy(two, np.r_[np.ones(30), np.zeros(30)]) == 0.0  # unselective units left out


def test_pinwheels_are_found_where_they_were_put_with_their_handedness():
    rows, cols = np.mgrid[0:40, 0:40].astype(float)
    placed = [(10.5, 12.5, +1), (27.5, 30.5, -1), (30.5, 8.5, +1)]
    theta = sum(h * np.arctan2(-(rows - r), cols - c) / 2 for r, c, h in placed)  # counter-clockwise angle
    found = T.find_pinwheels(np.mod(theta, np.pi))
    assert sorted((p.row, p.col, p.handedness) for p in found) == sorted(placed)


def test_random_map_has_no_smoothness_and_a_smooth_one_does():
    rng = np.random.default_rng(0)
    assert abs(T.smoothness(rng.uniform(0, np.pi, (60, 60)))) < 0.03
    rows, cols = np.mgrid[0:60, 0:60]
    assert T.smoothness(np.mod(0.05 * (rows + 2 * cols), np.pi)) > 0.95


def test_map_of_plane_waves_gives_its_spacing_and_a_density_near_pi():
    rng = np.random.default_rng(1)
    size, spacing = 128, 8.0
    rows, cols = np.mgrid[0:size, 0:size]
    c = np.zeros((size, size), complex)
    for a in rng.uniform(0, 2 * np.pi, 30):  # random superposition of waves of one wavelength
        k = 2 * np.pi / spacing * np.array([np.sin(a), np.cos(a)])
        c += np.exp(1j * (k[0] * rows + k[1] * cols + rng.uniform(0, 2 * np.pi)))
    assert abs(T.column_spacing(c) - spacing) < 0.5
    n = len(T.find_pinwheels(np.angle(c) / 2 % np.pi))
    rho = T.pinwheel_density(n, spacing, (size - 1) ** 2)
    assert 2.3 < rho < 4.0  # Gaussian random maps: ρ ≈ π


def test_branch_similarity_on_a_tree_of_known_filters():
    parents = groups.tree_parents(2, 3)  # 0 → (1, 2); 1 → (3, 4); 2 → (5, 6)
    base = {1: gabor(0.0), 2: gabor(np.pi / 2)}
    rng = np.random.default_rng(0)
    filters = np.stack([rng.normal(size=(16, 16)) * 0.01 + gabor(np.pi / 4) * 0.3] +
                       [base[1], base[2]] + [base[1 + (i >= 5)] + rng.normal(size=(16, 16)) * 0.2 for i in (3, 4, 5, 6)])
    sim = T.branch_similarity(filters, parents)
    assert sim["within"] > sim["across"] and sim["ratio"] > 1.5
    assert T.depths(parents).tolist() == [0, 1, 1, 2, 2, 2, 2]


# ---- synthetic maps of known column spacing and pin-wheel density (issue 13) ------------------------------
# Wolf & Geisel's model of an orientation map: c = Σ_j a_j e^{i k_j·x}, complex Gaussian a_j, every |k_j| = 2π/Λ.
# Such a map has column spacing Λ and, for many wave directions, ρ = π pin-wheels per Λ² on average.

def lattice_wave_map(side: int, n2: int, rng) -> tuple[np.ndarray, float]:
    """A map on a side×side torus (exactly periodic): the waves whose integer wave-number vectors (a, b) have
    a² + b² = n2, so Λ = side / √n2 exactly."""
    vectors = [(a, b) for a in range(-side // 2, side // 2 + 1) for b in range(-side // 2, side // 2 + 1)
               if a * a + b * b == n2]
    rows, cols = np.mgrid[0:side, 0:side]
    c = sum((rng.normal() + 1j * rng.normal()) * np.exp(2j * np.pi * (a * rows + b * cols) / side) for a, b in vectors)
    return c, side / np.sqrt(n2)


def plane_wave_map(side: int, spacing: float, rng, waves: int = 40) -> np.ndarray:
    """A map on a plain side×side grid (not periodic): `waves` directions drawn at random, wavelength `spacing`."""
    rows, cols = np.mgrid[0:side, 0:side]
    c = np.zeros((side, side), complex)
    for a in rng.uniform(0, 2 * np.pi, waves):
        k = 2 * np.pi / spacing * np.array([np.sin(a), np.cos(a)])
        c += (rng.normal() + 1j * rng.normal()) * np.exp(1j * (k[0] * rows + k[1] * cols))
    return c


def omap_of(c: np.ndarray) -> T.OrientationMap:
    side = c.shape  # r = |c|, so the map's complex form r·e^{2iθ} is c itself
    return T.OrientationMap(theta=np.mod(np.angle(c) / 2, np.pi), selectivity=np.abs(c), frequency=np.ones(side),
                            position=np.zeros((*side, 2)))


def test_torus_map_gives_its_exact_spacing_balanced_handedness_and_a_density_near_pi():
    """On a torus Λ is read off the lattice exactly (to 1e-6); every pin-wheel has a partner of the other
    handedness (total winding 0 on a closed surface); ρ averaged over 6 maps is within 10 % of π
    (measured: 3.27 ± 0.11 per map at Λ = 7.1)."""
    rng = np.random.default_rng(0)
    densities = []
    for _ in range(6):
        c, spacing = lattice_wave_map(128, 325, rng)  # 24 waves, Λ = 128 / √325 ≈ 7.10, 18 periods a side
        s = T.summarise(omap_of(c), wrap=True)
        assert s.spacing == pytest.approx(spacing, rel=1e-6)
        assert s.n_left == s.n_right and s.area == 128 * 128 and s.note is None
        assert s.periods == pytest.approx(128 / spacing)
        densities.append(s.density)
    assert np.mean(densities) == pytest.approx(np.pi, rel=0.10)
    # without wrapping, the plaquettes across the seam are not searched: fewer pin-wheels
    c, _ = lattice_wave_map(128, 325, rng)
    theta = np.mod(np.angle(c) / 2, np.pi)
    assert len(T.find_pinwheels(theta)) < len(T.find_pinwheels(theta, wrap=True))


def test_plain_map_gives_its_spacing_and_a_density_near_pi():
    """Λ within 2 % (measured ≤ 0.5 %), mean ρ over 6 maps within 15 % of π (measured 3.08 ± 0.22)."""
    rng = np.random.default_rng(1)
    for spacing in (7.3, 9.5):
        got = [T.summarise(omap_of(plane_wave_map(100, spacing, rng))) for _ in range(6)]
        assert all(s.spacing == pytest.approx(spacing, rel=0.02) for s in got)
        assert np.mean([s.density for s in got]) == pytest.approx(np.pi, rel=0.15)


def torus_charges(side: int, centres: list[tuple[float, float]]) -> tuple[np.ndarray, list[tuple[float, float, int]]]:
    """θ on a side×side torus with pin-wheels placed explicitly: each centre (r0, c0) multiplies c by
    f = sin 2π(col − c0)/side − i sin 2π(row − r0)/side, periodic with zeros at (r0, c0) and at the three
    points half a period away: handedness +1, −1, −1, +1 (a zero of x − iy winds counter-clockwise as drawn)."""
    rows, cols = np.mgrid[0:side, 0:side].astype(float)
    c = np.ones((side, side), complex)
    expected = []
    for r0, c0 in centres:
        c = c * (np.sin(2 * np.pi * (cols - c0) / side) - 1j * np.sin(2 * np.pi * (rows - r0) / side))
        for dr, dc, h in ((0, 0, 1), (side / 2, 0, -1), (0, side / 2, -1), (side / 2, side / 2, 1)):
            expected.append(((r0 + dr) % side, (c0 + dc) % side, h))
    return np.mod(np.angle(c) / 2, np.pi), expected


def test_pinwheels_placed_on_a_torus_are_found_also_across_its_edges():
    side = 40
    # the first pair's partner at col 31.5 + 20 = 51.5 ≡ 11.5; (39.5, ·) sits between the last row and the first
    theta, expected = torus_charges(side, [(5.5, 31.5), (39.5, 8.5)])
    found = T.find_pinwheels(theta, wrap=True)
    assert sorted((p.row, p.col, p.handedness) for p in found) == sorted(expected)
    plain = T.find_pinwheels(theta)  # a plain grid cannot see the plaquettes across the seam
    assert sorted((p.row, p.col, p.handedness) for p in plain) == sorted(e for e in expected if e[0] < side - 1 and e[1] < side - 1)


def test_border_band_is_left_out_of_count_area_and_spacing():
    rng = np.random.default_rng(2)
    c = plane_wave_map(80, 8.0, rng)
    theta = np.mod(np.angle(c) / 2, np.pi)
    omap = omap_of(c)
    border = 6
    s = T.summarise(omap, border=border)
    inner = [p for p in T.find_pinwheels(theta) if border < p.row < 80 - border - 1 and border < p.col < 80 - border - 1]
    assert s.n_pinwheels == len(inner) == len(T.find_pinwheels(theta[border:-border, border:-border]))
    assert s.area == (80 - 2 * border - 1) ** 2 and s.border == border
    assert s.spacing == pytest.approx(T.column_spacing(c[border:-border, border:-border]))
    assert s.smoothness == pytest.approx(T.smoothness(theta[border:-border, border:-border]))
    with pytest.raises(ValueError, match="border"):
        T.summarise(omap, border=40)


def test_too_few_periods_gives_no_density_but_says_why():
    """A map whose valid region spans fewer than 2Λ: pin-wheels are still listed, the density is not given."""
    rng = np.random.default_rng(3)
    c = plane_wave_map(30, 20.0, rng)
    s = T.summarise(omap_of(c))
    assert s.periods < T.MIN_PERIODS and s.density is None and s.note == T.TOO_FEW_PERIODS == \
        "too few periods to count pin-wheels"
    # the same map type with room for several periods does give one
    assert T.summarise(omap_of(plane_wave_map(100, 10.0, rng))).density is not None
    # a wide border can take a map below 2Λ
    c = plane_wave_map(48, 10.0, rng)
    assert T.summarise(omap_of(c)).density is not None  # 4.8 periods
    wide = T.summarise(omap_of(c), border=16)  # 16 units left: 1.6 periods
    assert wide.density is None and wide.note == T.TOO_FEW_PERIODS


def test_smoothness_of_band_limited_maps_grows_with_their_spacing():
    """The reference values docs/pinwheels.md quotes: ⟨cos 2Δθ⟩ of neighbours is ≈ 0.64 at Λ = 6 units,
    ≈ 0.76 at Λ = 8 and ≈ 0.82 at Λ = 10 — a map needs Λ ≳ 7 units for smoothness 0.7."""
    rng = np.random.default_rng(4)
    values = {lam: np.mean([T.smoothness(np.mod(np.angle(plane_wave_map(96, lam, rng)) / 2, np.pi))
                            for _ in range(3)]) for lam in (6.0, 8.0, 10.0)}
    assert values[6.0] == pytest.approx(0.64, abs=0.05) and values[8.0] == pytest.approx(0.76, abs=0.04)
    assert values[10.0] == pytest.approx(0.82, abs=0.04)


class _MapOfGabors:
    """A stand-in model whose filters are Gabors with the orientations of a given map on a rows×cols grid."""

    def __init__(self, theta: np.ndarray, wrap: bool, border: int = 0):
        import torch

        self._p = torch.nn.Parameter(torch.zeros(1))
        rows, cols = theta.shape
        self.bank = {"filters": np.stack([gabor(t, size=12, sigma=2.5) for t in theta.ravel()]),
                     "layout": {"type": "grid", "rows": rows, "cols": cols, "wrap": wrap, "border": border}}

    def parameters(self):
        return [self._p]

    def filter_bank(self) -> dict:
        return self.bank


@pytest.mark.parametrize("side,spacing,wrap,border,counted", [
    (24, 20.0, False, 0, False),  # 1.2 periods: no density, the note instead
    (48, 8.0, False, 2, True),  # 5.5 periods inside the border band
    (32, 32 / 5, True, 0, True),  # a torus, 5 periods
])
def test_panel_gives_density_only_with_room_for_two_periods(side, spacing, wrap, border, counted):
    from pinwheel.panels import topographic_map

    rng = np.random.default_rng(5)
    c = lattice_wave_map(side, 25, rng)[0] if wrap else plane_wave_map(side, spacing, rng)
    theta = np.mod(np.angle(c) / 2, np.pi)
    panel = topographic_map.produce(_MapOfGabors(theta, wrap, border), object())
    assert panel["lambda"] == pytest.approx(spacing, rel=0.15) and panel["wrap"] is wrap and panel["border"] == border
    if counted:
        assert panel["rho"] is not None and panel["rho_band"] is not None and panel["rho_note"] is None and panel["hypercolumns"] >= 2
    else:
        assert panel["rho"] is None and panel["rho_band"] is None and panel["rho_note"] == "too few periods to count pin-wheels"
    assert panel["n_pinwheels"] == len(T.find_pinwheels(T.orientation_map(_MapOfGabors(theta, wrap).bank["filters"],
                                                                          (side, side)).theta, wrap))


def noisy(c: np.ndarray, noise: float, rng) -> np.ndarray:
    """c scaled to unit spread plus complex white noise of standard deviation `noise` (unit-scale roughness)."""
    c = c / np.abs(c).std()
    return c + noise * (rng.normal(size=c.shape) + 1j * rng.normal(size=c.shape)) / np.sqrt(2)


def test_band_passed_count_leaves_a_band_limited_map_alone_and_removes_the_pairs_noise_adds():
    """Kaschube et al. count pin-wheels on maps band-passed around Λ. A band-limited map keeps its pin-wheels
    (ρ_band = ρ ± 10 %); with unit-scale noise (smoothness 0.71 → 0.58) the raw count mistakes noise for
    columns (ρ ≈ 4.6, measured) while the band-passed one stays within 15 % of π (3.36 ± 0.11 measured)."""
    rng = np.random.default_rng(3)
    clean, raw, band = [], [], []
    for _ in range(6):
        c, _ = lattice_wave_map(128, 325, rng)
        s = T.summarise(omap_of(c), wrap=True)
        clean.append(s.density_bandpassed / s.density)
        s = T.summarise(omap_of(noisy(c, 1.0, rng)), wrap=True)
        raw.append(s.density)
        band.append(s.density_bandpassed)
    assert np.mean(clean) == pytest.approx(1.0, abs=0.10)
    assert np.mean(raw) > 1.3 * np.pi
    assert np.mean(band) == pytest.approx(np.pi, rel=0.15)
    # a plain map too (mirrored before filtering: no seam at its edges)
    got = [T.summarise(omap_of(noisy(plane_wave_map(100, 8.0, rng), 1.0, rng))) for _ in range(6)]
    assert np.mean([s.density_bandpassed for s in got]) == pytest.approx(np.pi, rel=0.15)
    assert np.mean([s.density for s in got]) > 1.3 * np.pi


def test_band_pass_keeps_waves_of_the_column_period_and_removes_others():
    rows, cols = np.mgrid[0:64, 0:64]
    wave = lambda n: np.exp(2j * np.pi * n * cols / 64)  # noqa: E731 (n cycles across the torus)
    spacing = 8.0  # Λ: 8 cycles across 64 units
    assert np.allclose(T.bandpass(wave(8), spacing, wrap=True), wave(8), atol=1e-3)  # gain 1 − 2e-4
    assert np.abs(T.bandpass(wave(24), spacing, wrap=True)).max() < 1e-3  # Λ/3: unit-scale, removed
    assert np.abs(T.bandpass(wave(2), spacing, wrap=True)).max() < 1e-2  # 4 Λ: a trend, removed (gain 2e-3)
    assert np.abs(T.bandpass(wave(1), spacing, wrap=True)).max() < 1e-3  # 8 Λ
    assert np.abs(T.bandpass(np.ones((64, 64)), spacing, wrap=True)).max() < 1e-6
