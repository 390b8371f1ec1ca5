"""Science II: conv group-sparse stack, local filters, lateral inhibition, topography analysis."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from pydantic import ValidationError
from scipy.optimize import minimize

from tests.conftest import Recorder
from pinwheel import groups
from pinwheel.analysis import topography as T
from pinwheel.configs import RunConfig, deep_merge, preset_by_id
from pinwheel.configs.conv_stack import ConvLayerConfig
from pinwheel.configs.lateral import LateralConfig
from pinwheel.configs.local_filters import LocalFiltersConfig
from pinwheel.models.conv_stack import ConvGroupSparseLayer
from pinwheel.models.lateral import LateralInhibition, SProjection, grid_mask, tree_mask
from pinwheel.models.local_filters import LocallyConnected, dihedral
from pinwheel.train import train

torch.set_num_threads(1)


# ---- locally connected layer ------------------------------------------------------------------

@pytest.mark.parametrize("stride, grid", [(1, None), (3, None), (1, 7)])
def test_locally_connected_layer_equals_a_per_unit_loop(stride, grid):
    g = torch.Generator().manual_seed(0)
    layer = LocallyConnected((11, 11), 4, stride, g, grid)
    with torch.no_grad():
        layer.b.normal_(generator=g)
        layer.W_d.normal_(generator=g)
    x = torch.randn(3, 121, generator=g)
    z = layer.encode(x)
    img = x.view(3, 11, 11)
    offsets = layer.offsets
    if grid is not None:
        assert len(offsets) == 7 and offsets[0] == 0 and offsets[-1] == 11 - 4
    x_hat = torch.zeros(3, 11, 11)
    zz = torch.randn(3, layer.side**2, generator=g)
    for u in range(layer.side**2):
        r, c = offsets[u // layer.side], offsets[u % layer.side]
        patch = img[:, r:r + 4, c:c + 4].reshape(3, 16)
        torch.testing.assert_close(z[:, u], torch.relu(patch @ layer.W_e[u] + layer.b[u]))
        x_hat[:, r:r + 4, c:c + 4] += zz[:, u, None, None] * layer.W_d[u].view(4, 4)
    torch.testing.assert_close(layer.decode(zz), x_hat.view(3, -1).detach(), rtol=1e-5, atol=1e-5)


def test_dihedral_shows_each_image_under_one_of_the_eight_symmetries_of_the_square():
    rng = np.random.default_rng(0)
    imgs = rng.normal(size=(200, 5, 5))
    out = dihedral(torch.tensor(imgs.reshape(200, 25)), (5, 5), torch.Generator().manual_seed(0)).numpy()
    seen = set()
    for img, o in zip(imgs, out.reshape(200, 5, 5)):
        variants = [np.rot90(img, k) for k in range(4)] + [np.fliplr(np.rot90(img, k)) for k in range(4)]
        match = [i for i, v in enumerate(variants) if np.array_equal(o, v)]
        assert len(match) == 1
        seen.add(match[0])
    assert seen == set(range(8))
    # a grating of one orientation comes out at θ, π/2 − θ, π/2 + θ and −θ: its mean moment vanishes
    g = np.repeat(gabor(0.3, size=16)[None], 400, axis=0)
    turned = dihedral(torch.tensor(g.reshape(400, -1)), (16, 16), torch.Generator().manual_seed(1)).numpy()
    props = T.unit_properties(turned.reshape(400, 16, 16))
    assert abs(np.mean(props.selectivity * np.exp(2j * props.theta))) < 0.15


# ---- conv layer: L2 pooling and the adjoint -----------------------------------------------------

def conv_layer(**kw) -> ConvGroupSparseLayer:
    cfg = ConvLayerConfig(**{"maps": 8, "kernel": 3, "groups": {"kind": "blocks_1d", "size": 4}, **kw})
    return ConvGroupSparseLayer(cfg, 2, torch.Generator().manual_seed(0))


def test_l2_pooling_equals_the_group_norm():
    layer = conv_layer(groups={"kind": "windows_1d", "size": 3, "stride": 2}, neighbourhood=1, pool_stride=1)
    z = torch.randn(2, 8, 5, 6)
    p = layer.pool(z)  # (2, G, 5, 6)
    per_position = z.permute(0, 2, 3, 1).reshape(-1, 8)
    expect = layer.groups.group_norms(per_position).view(2, 5, 6, -1).permute(0, 3, 1, 2)
    torch.testing.assert_close(p, expect, rtol=1e-5, atol=1e-6)


def test_l2_pooling_over_a_neighbourhood_with_stride_matches_the_formula():
    layer = conv_layer(neighbourhood=3, pool_stride=2)
    z = torch.randn(1, 8, 5, 5)
    p = layer.pool(z)
    assert p.shape == (1, 2, 3, 3)
    for j, members in enumerate([range(0, 4), range(4, 8)]):
        for pr in range(3):
            for pc in range(3):
                r, c = 2 * pr, 2 * pc
                e = sum(float(z[0, i, rr, cc]) ** 2 for i in members
                        for rr in range(r - 1, r + 2) for cc in range(c - 1, c + 2) if 0 <= rr < 5 and 0 <= cc < 5)
                assert math.isclose(float(p[0, j, pr, pc]), math.sqrt(e + 1e-8), rel_tol=1e-5)


def test_transposed_conv_decoder_is_the_adjoint_of_the_conv():
    layer = conv_layer(kernel=5)
    x, y = torch.randn(2, 2, 9, 7, dtype=torch.float64), torch.randn(2, 8, 9, 7, dtype=torch.float64)
    w = layer.W_d.detach().double()
    lhs = (layer.conv(x, w) * y).sum()  # ⟨A x, y⟩
    rhs = (x * layer.conv_t(y, w)).sum()  # ⟨x, Aᵀ y⟩
    assert abs(float(lhs - rhs)) < 1e-9 * float(lhs.abs() + 1)


# ---- lateral inhibition ---------------------------------------------------------------------------

def small_lateral(nonnegative: bool, seed: int) -> LateralInhibition:
    cfg = LateralConfig(units=13, lam=0.2, mask={"kind": "tree", "branching": 3, "depth": 3}, beta=0.2,
                        row_sum=0.6, inference_steps=2000, nonnegative=nonnegative)
    model = LateralInhibition(cfg, (4, 5), torch.Generator().manual_seed(seed))
    model.double()
    return model


@pytest.mark.parametrize("nonnegative, seed", [(True, 0), (False, 1), (False, 2)])
def test_lateral_inference_reaches_the_minimum_of_its_energy(nonnegative, seed):
    model = small_lateral(nonnegative, seed)
    rng = np.random.default_rng(seed)
    x = torch.tensor(rng.normal(size=(1, 20)))
    z = model.infer(x)
    d, s, lam = model.W_d.detach().numpy(), model.S.numpy(), model.config.lam
    m = d.shape[1]

    def energy(v):  # v = (z⁺, z⁻) ≥ 0, z = z⁺ − z⁻, |z| = z⁺ + z⁻ at the optimum
        zp, zn = v[:m], v[m:]
        a, r = zp + zn, d @ (zp - zn) - x.numpy()[0]
        e = 0.5 * r @ r + lam * a.sum() + a @ s @ a
        g_a = lam + 2 * s @ a
        return e, np.concatenate([d.T @ r + g_a, -d.T @ r + g_a])

    bounds = [(0, None)] * m + [(0, 0 if nonnegative else None)] * m
    best = min((minimize(energy, rng.uniform(0, 0.5, 2 * m) * np.array([1] * m + [0 if nonnegative else 1] * m),
                         jac=True, method="L-BFGS-B", bounds=bounds, options={"ftol": 1e-14, "gtol": 1e-10})
                for _ in range(5)), key=lambda r: r.fun)
    ours = float(model.energy(x, z)[0])
    assert ours <= best.fun + 1e-6
    np.testing.assert_allclose(z.numpy()[0], best.x[:m] - best.x[m:], atol=1e-3)


def test_s_projection_satisfies_every_constraint():
    rng = np.random.default_rng(0)
    mask = tree_mask(2, 4)
    proj = SProjection(mask, beta=0.1, row_sum=0.4)
    s = proj(rng.normal(size=mask.shape) * 0.3 + 0.05)
    assert np.allclose(s, s.T, atol=1e-12)
    assert s.min() >= 0 and s.max() <= 0.1 + 1e-12
    assert (np.diag(s) == 0).all() and (s[~mask] == 0).all()
    rows = s.sum(axis=1)
    np.testing.assert_allclose(rows[proj.active], 0.4, atol=1e-6)
    assert (rows[~proj.active] == 0).all() and (~proj.active).sum() == 1  # only the root has no one to inhibit
    # it is the nearest such matrix: a feasible point already in the set is left where it is
    np.testing.assert_allclose(proj(s), s, atol=1e-6)


def test_tree_mask_is_zero_exactly_on_ancestor_descendant_pairs():
    parents = groups.tree_parents(3, 3)
    mask = tree_mask(3, 3)

    def ancestors(i):
        out = set()
        while parents[i] >= 0:
            i = parents[i]
            out.add(i)
        return out

    for i in range(len(parents)):
        for j in range(len(parents)):
            on_branch = i == j or i in ancestors(j) or j in ancestors(i)
            assert mask[i, j] == (not on_branch), (i, j)


def test_grid_mask_spares_neighbours_on_the_torus():
    mask = grid_mask(5, 1.5, wrap=True)
    near = np.flatnonzero(~mask[0])  # unit (0, 0): itself, 4 edge and 4 diagonal neighbours, wrapped
    assert sorted(near.tolist()) == sorted([0, 1, 4, 5, 20, 6, 9, 21, 24])


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


# ---- validation ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("config, field", [
    ({"model": {"kind": "local_filters", "receptive_field": 40}, "data": {"kind": "natural_images", "image_size": 32}},
     "receptive_field"),
    ({"model": {"kind": "local_filters"}, "data": {"kind": "natural_patches"}}, "data.kind"),
    ({"model": {"kind": "lateral", "units": 30, "mask": {"kind": "tree", "branching": 3, "depth": 4}}}, "units"),
    ({"model": {"kind": "lateral", "beta": 0}}, "beta"),
    ({"model": {"kind": "lateral", "beta": -1.0}}, "beta"),
    ({"model": {"kind": "lateral", "units": 16, "mask": {"kind": "grid", "radius": 4}}}, "mask.radius"),
    ({"model": {"kind": "lateral", "beta": 0.01, "row_sum": 5}}, "row_sum"),
    ({"model": {"kind": "conv_stack", "layers": [{"kernel": 9}]},
      "data": {"kind": "sklearn_digits", "train_size": 1000, "test_size": 300}}, "kernel"),  # 1,797 digits in all
    ({"model": {"kind": "conv_stack", "layers": [{"maps": 10, "groups": {"kind": "blocks_1d", "size": 4}}]}},
     "groups.size"),
])
def test_invalid_configs_are_refused_naming_the_field(config, field):
    with pytest.raises(ValidationError) as err:
        RunConfig.model_validate(config)
    assert field in str(err.value)


# ---- end to end: every preset, tiny -----------------------------------------------------------------

TINY = {
    "conv-stack": ({"model": {"steps_per_layer": 6, "probe_train": 200, "probe_every_steps": 4},  # a probe every frame
                    "data": {"train_size": 300, "test_size": 100}},
                   {"W_e_1", "W_d_1", "b_1", "g_1", "W_e_2", "W_d_2", "b_2", "g_2"}),
    "pinwheels-local": ({"model": {"grid": 6, "anneal_steps": 5}, "data": {"image_size": 12, "pool_size": 100}},
                        {"W_e", "W_d", "b", "grid_shape", "positions", "receptive_field"}),
    "lateral-tree": ({"data": {"pool_size": 1000}, "model": {"inference_steps": 10}}, {"W_d", "S", "tree_parents"}),
    "lateral-2d": ({"data": {"pool_size": 1000}, "model": {"units": 64, "row_sum": 1.0, "inference_steps": 10}},
                   {"W_d", "S", "grid_shape"}),
}


@pytest.mark.parametrize("preset_id", sorted(TINY))
def test_preset_trains_end_to_end(preset_id):
    override, names = TINY[preset_id]
    cfg = RunConfig.model_validate(deep_merge(preset_by_id(preset_id)["config"], deep_merge(override, {
        "train": {"steps": 12, "batch_size": 8, "frame_every_steps": 4, "frame_every_seconds": 100, "device": "cpu"}})))
    rec = Recorder()
    assert train(cfg, rec) == "succeeded"
    assert [f["step"] for f in rec.frames] == [0, 4, 8, 12]
    panel = rec.frames[-1]["panels"]["filter_grid"]
    assert panel["count"] > 0 and panel["atlas_png"]
    assert names <= set(rec.weights) and all(np.isfinite(v).all() for v in rec.weights.values())
    if preset_id == "conv-stack":
        assert {"probe_pixels", "probe_layer1", "probe_layer2"} <= set(rec.frames[-1]["metrics"])


@pytest.mark.parametrize("model, layout", [({"grid": None, "stride": 1}, "positions"), ({"grid": 12}, "grid")])
def test_local_filters_are_drawn_without_covering_each_other(model, layout):
    """Fields at image positions when every unit has its own; on the unit grid when units share fields."""
    from pinwheel.data import build_dataset
    from pinwheel.models import build_model
    from pinwheel.panels import produce_panels

    cfg = RunConfig.model_validate(deep_merge(preset_by_id("pinwheels-local")["config"], {
        "model": {**model, "anneal_steps": 5}, "data": {"image_size": 14, "pool_size": 100}}))
    data = build_dataset(cfg.data, 0)
    net = build_model(cfg.model, data, torch.Generator().manual_seed(0))
    fg = produce_panels(net, data.probe(16)[0])["filter_grid"]
    assert fg["layout"]["type"] == layout and fg["count"] == net.side**2
    h, w = fg["tile"]
    if layout == "grid":
        assert fg["size"] == [net.side * (w + 1) + 1] * 2
        tiles = [((i % net.side) * (w + 1), (i // net.side) * (h + 1)) for i in range(fg["count"])]
    else:
        tiles = fg["tiles"]
    xy = np.array(tiles)
    dx, dy = np.abs(xy[:, None, 0] - xy[None, :, 0]), np.abs(xy[:, None, 1] - xy[None, :, 1])
    overlap = (dx < w) & (dy < h)
    np.fill_diagonal(overlap, False)
    assert not overlap.any()
