"""pinwheel/models/local_filters.py: the locally connected layer, the dihedral augmentation, and how local filters are drawn."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from pinwheel.analysis import topography as T
from pinwheel.configs import RunConfig, deep_merge, preset_by_id
from pinwheel.models.image_ops import dihedral
from pinwheel.models.local_layers import LocallyConnected
from tests.pinwheel.test_topography import gabor  # a Gabor of known orientation

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


OWN_PIXELS = {"envelope_sigma": None, "envelope_cut": None, "receptive_field": 4}  # fields on whole pixels (the layer before retinotopy)


@pytest.mark.parametrize("model, layout", [({**OWN_PIXELS, "grid": None, "stride": 1, "wrap": False}, "positions"),
                                           ({**OWN_PIXELS, "grid": 12, "wrap": False}, "grid"),
                                           ({**OWN_PIXELS, "grid": 28, "wrap": True}, "grid"),  # 4 units a field
                                           ({"grid": 20}, "grid")])  # the preset's own centres, 1.4 per pixel
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


# ---- sub-pixel retinotopy (envelope_sigma) ------------------------------------------------------

def retinotopic(image=12, grid=20, k=7, sigma=1.5, seed=0, wrap=True, cut=None):
    from pinwheel.models.local_layers import RetinotopicLayer

    g = torch.Generator().manual_seed(seed)
    layer = RetinotopicLayer((image, image), k, grid, sigma, g, wrap=wrap, cut=cut)
    with torch.no_grad():
        layer.b.normal_(generator=g)
        layer.W_d.normal_(generator=g)
    return layer


def brute_force_envelope(image, grid, k, sigma, wrap=True, cut=None):
    """(U, H, W): each unit's envelope on the image, pixel by pixel: centre (i, j)·H/grid, window the k pixels
    from round(centre − (k − 1)/2) on, wrapped round the image (else cut at its edges), 0 outside the window
    and, with `cut`, 0 farther than cut·σ from the centre."""
    out = np.zeros((grid, grid, image, image))
    for i in range(grid):
        for j in range(grid):
            ci, cj = i * image / grid, j * image / grid
            fi, fj = round(ci - (k - 1) / 2), round(cj - (k - 1) / 2)
            for a in range(k):
                for b in range(k):
                    if not wrap and not (0 <= fi + a < image and 0 <= fj + b < image):
                        continue
                    d2 = (fi + a - ci) ** 2 + (fj + b - cj) ** 2
                    if cut is not None and d2 > (cut * sigma) ** 2:
                        continue
                    out[i, j, (fi + a) % image, (fj + b) % image] = np.exp(-d2 / (2 * sigma**2))
    return out.reshape(grid * grid, image, image)


@pytest.mark.parametrize("image, grid, k, sigma, wrap, cut", [
    (12, 20, 7, 1.5, True, None), (12, 32, 12, 1.5, True, None), (10, 15, 4, 0.8, True, None),
    (12, 20, 7, 1.5, False, None), (12, 32, 12, 1.75, True, 3.0), (12, 20, 7, 1.5, False, 1.5)])
def test_retinotopic_envelopes_are_gaussians_round_each_units_own_centre(image, grid, k, sigma, wrap, cut):
    layer = retinotopic(image, grid, k, sigma, wrap=wrap, cut=cut)
    ones = torch.ones_like(layer.W_d)
    expected = brute_force_envelope(image, grid, k, sigma, wrap, cut)
    np.testing.assert_allclose(layer.dense(ones).view(-1, image, image).numpy(), expected, rtol=1e-5, atol=1e-7)
    # the envelope peaks where the centre is: its centre of mass is the centre (up to the window's cut)
    e = layer.envelope.view(grid, grid, k, k)
    assert torch.all(e.amax(dim=(2, 3)) > np.exp(-1 / (4 * sigma**2)) - 1e-6)  # a pixel within ½√2 px of it
    # no two units see the same weighted input: neighbours' centres are image/grid px apart
    dense = layer.dense(ones)
    assert torch.cdist(dense, dense).add(torch.eye(grid * grid) * 1e9).min() > 1e-3


@pytest.mark.parametrize("image, grid, k, sigma, wrap", [(12, 20, 7, 1.5, True), (9, 9, 9, 2.0, True),
                                                        (12, 20, 7, 1.5, False)])
def test_retinotopic_layer_equals_a_per_unit_loop(image, grid, k, sigma, wrap):
    layer = retinotopic(image, grid, k, sigma, wrap=wrap)
    env = brute_force_envelope(image, grid, k, sigma, wrap)  # (U, H, W)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, image * image, generator=g)
    zz = torch.rand(3, grid * grid, generator=g)
    z = layer.encode(x)
    x_hat = torch.zeros(3, image * image, dtype=torch.float64)
    for u in range(grid * grid):
        # the unit's weights on the image: weight i sits at pixel pixel[u, i]
        w_e = np.zeros(image * image)
        w_d = np.zeros(image * image)
        inside = layer.envelope[u].numpy() > 0  # off-image window pixels (plain image) have envelope 0
        w_e[layer.pixel[u].numpy()[inside]] = layer.W_e[u].detach().numpy()[inside]
        w_d[layer.pixel[u].numpy()[inside]] = layer.W_d[u].detach().numpy()[inside]
        e = env[u].ravel()
        pre = x.double().numpy() @ (e * w_e) + float(layer.b[u].detach())
        np.testing.assert_allclose(z[:, u].detach().numpy(), np.maximum(pre, 0), rtol=1e-4, atol=1e-5)
        x_hat += zz[:, u, None].double() * torch.from_numpy(e * w_d)
    torch.testing.assert_close(layer.decode(zz).double(), x_hat.detach(), rtol=1e-4, atol=1e-5)


def test_retinotopic_units_own_their_weights_and_gradients_reach_only_them():
    layer = retinotopic(12, 16, 7, 1.5)
    units, k2 = layer.W_e.shape
    assert units == 16 * 16 and k2 == 49 and layer.W_d.shape == (units, k2)  # one row per unit, nothing shared
    assert layer.W_e.is_contiguous() and layer.W_e.data_ptr() != layer.W_d.data_ptr()
    x = torch.randn(8, 144, generator=torch.Generator().manual_seed(2)) * 3
    with torch.no_grad():
        layer.b.fill_(5.0)  # every unit active
    for u in (0, 17, units - 1):
        layer.zero_grad()
        layer.encode(x)[:, u].sum().backward()
        rows = layer.W_e.grad.abs().sum(dim=1).nonzero().flatten().tolist()
        assert rows == [u]
        z = torch.zeros(4, units)
        z[:, u] = 1.0
        layer.zero_grad()
        layer.decode(z).pow(2).sum().backward()
        assert layer.W_d.grad.abs().sum(dim=1).nonzero().flatten().tolist() == [u]


def test_retinotopic_atoms_are_projected_onto_the_unit_ball_with_their_envelope():
    layer = retinotopic(12, 16, 7, 1.5)
    with torch.no_grad():
        layer.W_d.mul_(torch.linspace(0.1, 10, 256)[:, None])
    before = layer.atoms().norm(dim=1)
    layer.project_()
    after = layer.atoms().norm(dim=1)
    torch.testing.assert_close(after, before.clamp_max(1.0))


@pytest.mark.parametrize("model", [{"grid": 12, "pool": 3, "pool_sigma": 0.7, "anneal_sigma_from": None},
                                   {"grid": 8, "pool": 3, "anneal_sigma_from": 2.0},  # window 9 > 8 units: wraps twice
                                   {**OWN_PIXELS, "grid": None, "wrap": False},  # cut pools
                                   {"grid": 16, "envelope_sigma": 1.5, "receptive_field": 7}])
def test_pool_energies_by_the_kronecker_factors_equal_the_dense_groups(model):
    from pinwheel.models.local_filters import LocalFiltersAE

    cfg = RunConfig.model_validate(deep_merge(preset_by_id("pinwheels-local")["config"], {"model": model}))
    net = LocalFiltersAE(cfg.model, (12, 12), torch.Generator().manual_seed(0))
    z = torch.rand(5, net.side**2, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(net.pooled_energy(z), z.pow(2) @ net.group_weights.T)


def test_envelope_cut_makes_round_fields_and_the_weights_start_inside_them():
    layer = retinotopic(12, 32, 12, 1.75, cut=3.0)
    e = layer.envelope.view(32, 32, 12, 12)
    # the round field: its corners (≥ 6.4 px from every centre) are cut, the pixels within 3σ = 5.25 px are not
    assert torch.all(e[:, :, 0, 0] == 0) and torch.all(e[:, :, -1, -1] == 0)
    assert torch.all((e > 0).sum(dim=(2, 3)) >= 81)  # π·5.25² ≈ 87 pixels, up to the lattice
    full = retinotopic(12, 32, 12, 1.75)
    assert torch.all((full.envelope > 0).sum(dim=1) == 144)
    # weights start as a unit Gaussian vector times the envelope (small where it is small, 0 where it is cut)
    from pinwheel.models.local_layers import RetinotopicLayer

    fresh = RetinotopicLayer((12, 12), 12, 32, 1.75, torch.Generator().manual_seed(4), cut=3.0)
    g = torch.randn(32 * 32, 144, generator=torch.Generator().manual_seed(4))
    torch.testing.assert_close(fresh.W_d.detach(), g / g.norm(dim=1, keepdim=True) * fresh.envelope)
    assert torch.equal(fresh.W_e, fresh.W_d) and torch.all(fresh.W_d[fresh.envelope == 0] == 0)
    assert float(fresh.atoms().detach().norm(dim=1).max()) < 0.5  # E ⊙ E ⊙ g/‖g‖: far inside the unit ball


@pytest.mark.parametrize("model, message", [({"envelope_cut": 3.0, "envelope_sigma": None}, "envelope_cut"),
                                            ({"envelope_cut": 0.2, "envelope_sigma": 1.5}, "envelope_cut")])
def test_envelope_cut_needs_an_envelope_and_a_pixel(model, message):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=message):
        RunConfig.model_validate(deep_merge(preset_by_id("pinwheels-local")["config"], {"model": model}))


def test_envelope_needs_a_unit_grid():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="envelope_sigma"):
        RunConfig.model_validate(deep_merge(preset_by_id("pinwheels-local")["config"],
                                            {"model": {"envelope_sigma": 1.5, "grid": None}}))


def test_exported_weights_are_the_enveloped_filters_in_use():
    """weights.npz carries E_u ⊙ W[u] (and the envelope), what each unit applies on its window: with the
    windows' pixels (`pixel`) the exported arrays encode and decode as the model does."""
    from pinwheel.models.local_filters import LocalFiltersAE

    cfg = RunConfig.model_validate(deep_merge(preset_by_id("pinwheels-local")["config"],
                                              {"model": {"grid": 16, "envelope_sigma": 1.5, "receptive_field": 7}}))
    net = LocalFiltersAE(cfg.model, (12, 12), torch.Generator().manual_seed(0))
    with torch.no_grad():
        net.layer.W_e.add_(1.0)
        net.layer.b.normal_(generator=torch.Generator().manual_seed(1))
    w = net.weights()
    x = torch.randn(3, 144, generator=torch.Generator().manual_seed(2))
    image = net.image(x).numpy()
    pixel = net.layer.pixel.numpy()  # (U, k²): the image pixel under each window pixel
    z = np.maximum(np.einsum("bup,up->bu", image[:, pixel], w["W_e"]) + w["b"], 0)
    np.testing.assert_allclose(z, net.encode(x).detach().numpy(), rtol=1e-5, atol=1e-5)
    x_hat = np.zeros((3, 144))
    for u in range(pixel.shape[0]):
        np.add.at(x_hat, (slice(None), pixel[u]), z[:, u:u + 1] * w["W_d"][u])
    np.testing.assert_allclose(x_hat, net.layer.decode(net.encode(x)).detach().numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(w["envelope"], net.layer.envelope.numpy())


def test_lr_anneal_falls_by_a_half_cosine_between_its_steps_and_stays_at_the_floor():
    from pinwheel.models.local_filters import LocalFiltersAE

    cfg = RunConfig.model_validate(deep_merge(preset_by_id("pinwheels-local")["config"], {
        "model": {"grid": 8, "receptive_field": 7, "lr_anneal": [100, 300], "lr_floor": 0.1}}))
    net = LocalFiltersAE(cfg.model, (12, 12), torch.Generator().manual_seed(0))
    opt = net.make_optimizer(0.02)
    x = torch.randn(4, 144, generator=torch.Generator().manual_seed(1))
    seen = {}
    for step in (0, 100, 200, 300, 500):
        net.train_step(x, None, step, opt)
        seen[step] = opt.param_groups[0]["lr"]
    assert seen[0] == seen[100] == 0.02
    assert seen[200] == pytest.approx(0.02 * (0.1 + 0.9 * 0.5))  # half-way down the cosine
    assert seen[300] == seen[500] == pytest.approx(0.002)
    # a resumed run: the optimizer's state brings train.lr back with it, so step 200 gives the same rate
    fresh = net.make_optimizer(0.02)
    fresh.load_state_dict(opt.state_dict())
    net.train_step(x, None, 200, fresh)
    assert fresh.param_groups[0]["lr"] == pytest.approx(seen[200])


@pytest.mark.parametrize("anneal", [[300, 300], [500, 100], [-1, 10]])
def test_lr_anneal_needs_first_before_last(anneal):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="lr_anneal"):
        RunConfig.model_validate(deep_merge(preset_by_id("pinwheels-local")["config"], {"model": {"lr_anneal": anneal}}))
