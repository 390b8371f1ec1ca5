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
