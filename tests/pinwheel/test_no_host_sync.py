"""Issue 17: no host synchronisation in the training step of any preset, and the same numbers as before.

Every preset takes training steps with its model and data on the `meta` device (no data: any read-back
raises) under HostSyncGuard (blocking host → device copies and ops that sync on CUDA are recorded).
Where an algorithm changed to get there, it is checked against the one it replaced.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from bench.step_check import HostSyncGuard, build, preset_config, run_steps
from tests.conftest import Recorder
from pinwheel import groups, inference
from pinwheel.configs import PRESETS, RunConfig, deep_merge, preset_by_id
from pinwheel.data import Dataset
from pinwheel.models.lateral import SProjection, tree_mask
from pinwheel.models.image_ops import dihedral
from pinwheel.models.local_filters import grid_pools
from pinwheel.train import train

LATE = 100_000  # past every schedule: conv stack's last layer, DrSAE's supervised phase, pools annealed, λ warm


@pytest.mark.parametrize("preset_id", [p["id"] for p in PRESETS])
def test_training_steps_on_the_meta_device_with_no_host_sync(preset_id):
    cfg, _ = preset_config(preset_by_id(preset_id))
    model, dataset, optimizer, generator = build(cfg, "meta", build_on="cpu")
    for start in (0, LATE):  # each phase's first step unguarded: per-device tables are built on first use
        first = run_steps(model, dataset, optimizer, generator, 1, 16, start=start)
        with HostSyncGuard() as guard:
            terms = run_steps(model, dataset, optimizer, generator, 2, 16, start=start + 1)
        assert guard.found == [], f"{preset_id} at step {start + 1}: {guard.found}"
        assert set(terms) == set(first) and all(t.device.type == "meta" for t in terms.values())
    assert all(p.device.type == "meta" for p in model.parameters())


def test_the_guard_and_the_meta_device_catch_what_they_claim():
    w = torch.randn(8, 6, device="meta")
    with pytest.raises(Exception, match="meta"):
        float(w.sum())
    with pytest.raises(Exception):
        inference.lipschitz(w)  # the SVD read back as a float
    with HostSyncGuard() as guard:
        w + torch.ones(6).to("meta")  # a tensor made on the host and copied every step
        torch.linalg.matrix_norm(w, ord=2)  # an SVD: its info flag is read on the host on CUDA
        w + torch.ones(6).to("meta", non_blocking=True)  # allowed: the pinned asynchronous path
    assert len(guard.found) == 2 and "blocking copy" in guard.found[0] and "svd" in guard.found[1]


# ---- the algorithms that changed, against the ones they replaced --------------------------------------

@pytest.mark.parametrize("n, m", [(64, 64), (64, 63), (100, 256), (144, 256), (64, 40), (30, 200)])
def test_lipschitz_bound_is_a_safe_and_tight_upper_bound(n, m):
    g = torch.Generator().manual_seed(n * m)
    w = torch.randn(n, m, generator=g)
    w /= w.norm(dim=0)
    q = torch.linalg.qr(torch.randn(max(n, m), max(n, m), generator=g))[0][:n, :m]  # flat spectrum: the worst case
    rank1 = torch.randn(n, 1, generator=g) @ torch.randn(1, m, generator=g)
    for a in (w, q, rank1, 3.0 * w):
        exact, bound = inference.lipschitz(a), float(inference.lipschitz_bound(a))
        assert exact <= bound <= exact * min(n, m) ** (2.0**-7) * (1 + 2e-5), (exact, bound)
    assert float(inference.lipschitz_bound(w)) <= inference.lipschitz(w) * 1.01  # a real dictionary: ~1.000


def test_fista_with_the_bound_reaches_the_same_codes_as_with_the_exact_step():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(64, 96, generator=g)
    w /= w.norm(dim=0)
    x = torch.randn(16, 64, generator=g)
    e = lambda z: inference.energy(x, w, z, 0.5).mean()  # noqa: E731
    exact = inference.fista(x, w, 0.5, 600)
    bound = inference.fista(x, w, 0.5, 600, L=inference.lipschitz_bound(w))
    torch.testing.assert_close(bound, exact, atol=1e-4, rtol=0)
    e30, b30 = e(inference.fista(x, w, 0.5, 30)), e(inference.fista(x, w, 0.5, 30, L=inference.lipschitz_bound(w)))
    assert abs(float(b30 - e30)) / float(e30) < 0.01


@pytest.mark.parametrize("structure", [groups.tree(2, 5), groups.tree(3, 3), groups.blocks_1d(12, 3)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_laminar_prox_with_prepared_levels_equals_the_indexed_one(structure, dtype):
    u = torch.randn(20, structure.units, dtype=dtype, generator=torch.Generator().manual_seed(1))
    old = groups.tree_prox(u, structure.weights, 0.3, structure.meta["levels"])
    assert torch.equal(structure.prox(u, 0.3), old)
    assert torch.equal(structure.prox(u, torch.tensor(0.3, dtype=dtype)), old)  # τ on the device
    assert torch.equal(structure.prox(u, torch.tensor(0.0, dtype=dtype)), u)


def test_overlap_prox_with_tau_as_a_tensor_equals_the_float():
    g = groups.torus_2d(side=4, pool=3, stride=1, sigma=1.0)
    u = torch.randn(5, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(groups.overlap_prox(u, g.weights, torch.tensor(0.4, dtype=torch.float64), iters=50),
                               groups.overlap_prox(u, g.weights, 0.4, iters=50), rtol=0, atol=1e-15)


@pytest.mark.parametrize("beta, row_sum, scale", [(0.1, 0.4, 0.3), (1.0, 2.0, 0.05), (0.05, 0.2, 1.0)])
def test_s_projection_on_the_device_equals_the_numpy_one(beta, row_sum, scale):
    proj = SProjection(tree_mask(2, 4), beta=beta, row_sum=row_sum)
    s = np.random.default_rng(0).normal(size=proj.mask.shape) * scale + beta / 2
    ref = proj(s)
    torch.testing.assert_close(proj.tensor(torch.tensor(s)).numpy(), ref, rtol=0, atol=1e-12)  # CPU: adaptive
    frozen = proj.tensor(torch.tensor(s), adaptive=False, device_iters=2000)  # the device path: fixed count
    torch.testing.assert_close(frozen.numpy(), ref, rtol=0, atol=1e-12)


def old_grid_pools(rows, cols, pool, sigma):  # pinwheel/models/local_filters.py before issue 17 (NumPy)
    r, c = np.divmod(np.arange(rows * cols), cols)
    dr, dc = r[:, None] - r[None, :], c[:, None] - c[None, :]
    half = pool // 2
    inside = (np.abs(dr) <= half) & (np.abs(dc) <= half)
    w = (np.exp(-(dr**2 + dc**2) / (2 * sigma**2)) if sigma is not None else np.ones(inside.shape)) * inside
    w /= w.sum(axis=1, keepdims=True)
    return torch.tensor(w, dtype=torch.float32)


@pytest.mark.parametrize("pool, sigma", [(5, 1.5), (13, 3.0), (3, None), (7, 2.2)])
def test_pools_built_in_torch_equal_the_numpy_ones(pool, sigma):
    torch.testing.assert_close(grid_pools(24, 24, pool, sigma), old_grid_pools(24, 24, pool, sigma), rtol=2e-7, atol=1e-9)
    torch.testing.assert_close(grid_pools(6, 9, pool, sigma), old_grid_pools(6, 9, pool, sigma), rtol=2e-7, atol=1e-9)


def test_dihedral_gather_equals_the_stacked_variants_for_the_same_draws():
    x = torch.randn(50, 36)
    which = torch.randint(0, 8, (50,), generator=torch.Generator().manual_seed(3))
    img = x.view(50, 6, 6)  # the old formula, with the same draws
    variants = [torch.rot90(img, k, dims=(1, 2)) for k in range(4)]
    old = torch.stack(variants + [v.flip(2) for v in variants])[which, torch.arange(50)].reshape(50, -1)
    assert torch.equal(dihedral(x, (6, 6), torch.Generator().manual_seed(3)), old)


def test_batches_on_the_cpu_are_drawn_as_before():
    ds = Dataset(torch.randn(500, 4), torch.arange(500), (2, 2))
    x, y = ds.batch(32, torch.Generator().manual_seed(4))
    idx = torch.randint(0, 500, (32,), generator=torch.Generator().manual_seed(4))
    assert torch.equal(x, ds.x[idx]) and torch.equal(y, idx)


# ---- the augmentation draws from the run's generator: a resumed run is the straight run ---------------

def local_filters_config() -> RunConfig:
    return RunConfig.model_validate(deep_merge(preset_by_id("pinwheels-local")["config"], {
        "model": {"grid": 8, "pool": 3, "anneal_sigma_from": 2.0, "anneal_steps": 30, "lam_warmup_steps": 10,
                  "augment": True, "lr_anneal": [10, 30]},  # the resumed run starts (step 20) mid-anneal
        "data": {"image_size": 12, "pool_size": 100},
        "train": {"steps": 40, "batch_size": 8, "frame_every_steps": 10, "frame_every_seconds": 3600}}))


def test_local_filters_resumed_run_equals_the_straight_run_exactly():
    cfg = local_filters_config()
    assert cfg.model.augment
    straight = Recorder()
    train(cfg, straight)
    torch.manual_seed(12345)  # the global RNG must not matter
    first = Recorder(stop_after=20)
    assert train(cfg, first) == "cancelled"
    state = first.checkpoints[-1][0]
    assert state["step"] == 20
    torch.rand(100)  # nor where it stands
    resumed = Recorder()
    train(cfg, resumed, resume=state)
    for name in ("W_e", "W_d", "b", "group_weights"):
        np.testing.assert_array_equal(resumed.checkpoints[-1][1][name], straight.checkpoints[-1][1][name], err_msg=name)
