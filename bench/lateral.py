"""Lateral-inhibition bench (issue 13): the tree and 2-D presets trained, then measured on held-out patches.

    PYTHONPATH=. python bench/lateral.py [--quick] [--only lateral-tree|lateral-2d] [--steps N] [--save-weights DIR]

Per preset: wall and CPU time of training (one torch thread; `uptime` load before and after), then on
held-out patches (pinwheel.analysis.lateral): units active per patch, share of units active on some
patch, dead units, relative reconstruction error Σ‖x − W_d z‖² / Σ‖x‖², the inhibition term
mean |z|ᵀS|z|, the share of patches with co-active units that may inhibit each other, and how S moved
from its start (spread now vs at the start, largest change, shares at β and at 0). Tree: filter |cos|
within / across branches and orientation agreement, each next to its random-relabelling control
(filters dealt to the nodes at random), and the depth profile. 2-D: the orientation map
(pinwheel.analysis.topography: smoothness on the torus, Λ, periods across the grid, pin-wheels) next
to a shuffled-grid control. The same code numbers on training patches are reported apart, labelled.

Held-out patches: the run's x_test, from held-out regions of the photographs that training never draws.
Writes bench/results/lateral.json and docs/figures/lateral_*.png (--quick / --steps: lateral_quick.json, no figures).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from bench.science2 import orientation_image, save, tree_image
from pinwheel.analysis import lateral as L
from pinwheel.analysis import topography as T
from pinwheel.configs import RunConfig, deep_merge, preset_by_id
from pinwheel.data import Dataset, build_dataset
from pinwheel.data import natural
from pinwheel.models import build_model
from pinwheel.panels._util import tree_order
from pinwheel.panels.filter_grid import atlas

ROOT = Path(__file__).resolve().parent.parent
HELD_OUT_PATCHES = 4000
QUICK_STEPS = 200


def load() -> float:
    return round(os.getloadavg()[0], 2)


def held_out_split(data_cfg, seed: int) -> tuple[Dataset, np.ndarray, str]:
    """The run's training pool and its held-out patches (Dataset.x_test: held-out regions of every
    photograph, never drawn by training; pinwheel/data/natural.py)."""
    data = build_dataset(data_cfg.model_copy(update={"heldout_size": HELD_OUT_PATCHES}), seed)
    note = (f"held-out: {len(data.x_test)} patches from the held-out regions (last {natural.HELDOUT_FRACTION:.0%} "
            "of each photograph's longer side, whitened apart) that training never draws")
    return data, data.x_test.numpy(), note


def code_numbers(model, x: np.ndarray) -> dict:
    with torch.no_grad():
        z = model.infer(torch.from_numpy(x)).numpy()
    w = model.W_d.detach().numpy()
    s = model.S.numpy()
    stats = L.code_statistics(x, z, z @ w.T)
    stats.pop("active_share_per_unit")
    return {**stats, "inhibition_term": L.inhibition_term(z, s),
            "cross_coactive_share": L.cross_coactivity(z, model.mask.numpy())}


def s_matrix_image(s: np.ndarray, order: list[int], cell: int = 6) -> Image.Image:
    """S in the given order, grey = S / max S (white strongest), each entry cell×cell pixels."""
    sub = s[np.ix_(order, order)]
    img = (255 * sub / max(sub.max(), 1e-12)).astype(np.uint8)
    return Image.fromarray(img).resize((len(order) * cell,) * 2, Image.NEAREST)


def inhibition_fields(s: np.ndarray, side: int, units: list[int], cell: int = 8) -> Image.Image:
    """Rows of S drawn on the grid: for each chosen unit, how strongly it inhibits every other unit."""
    tiles = [s[u].reshape(side, side) for u in units]
    top = max(t.max() for t in tiles) or 1.0
    pad = 2
    out = np.full((side * cell, len(units) * (side * cell + pad)), 60, dtype=np.uint8)
    for k, t in enumerate(tiles):
        big = np.kron((255 * t / top).astype(np.uint8), np.ones((cell, cell), dtype=np.uint8))
        out[:, k * (side * cell + pad):k * (side * cell + pad) + side * cell] = big
    return Image.fromarray(out)


def measure(preset_id: str, steps: int | None, seed: int = 0, save_weights: Path | None = None,
            fixed_s: bool = False, figures: bool = True, config_override: dict | None = None) -> dict:
    """Train the preset (with `config_override` deep-merged into its config, for probes) and measure it."""
    override = deep_merge(config_override or {}, {"train": {"steps": steps}} if steps else {})
    if fixed_s:  # the ablation: the same run with S left at its start
        override = deep_merge(override, {"model": {"learn_S": False}})
    cfg = RunConfig.model_validate(deep_merge(preset_by_id(preset_id)["config"], override))
    tc = cfg.train
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    data, held, note = held_out_split(cfg.data, seed)
    model = build_model(cfg.model, data, gen)
    s0 = model.S.numpy().copy()
    opt = model.make_optimizer(tc.lr, tc.optimizer)
    at_start = code_numbers(model, held)
    load_before, start, cpu_start = load(), time.monotonic(), time.process_time()
    for step in range(tc.steps):
        x, _ = data.batch(tc.batch_size, gen)
        model.train_step(x, None, step, opt)
    wall, cpu = time.monotonic() - start, time.process_time() - cpu_start
    out = {"preset": preset_id, "steps": tc.steps, "batch_size": tc.batch_size, "units": cfg.model.units,
           "model": cfg.model.model_dump(), "wall_s": round(wall, 1), "cpu_s": round(cpu, 1), "load_before": load_before, "load_after": load(),
           "held_out_note": note, "held_out": code_numbers(model, held), "held_out_at_step_0": at_start,
           "training": code_numbers(model, data.x[:HELD_OUT_PATCHES].numpy()),
           "S": L.s_movement(model.S.numpy(), s0, model.mask.numpy(), cfg.model.beta)}
    filters = model.filter_bank()["filters"]
    s = model.S.numpy()
    if save_weights:
        save_weights.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(save_weights / f"{preset_id}.npz", S_start=s0, **model.weights())
    if model.parents is not None:
        control = L.relabel_control(filters, model.parents, draws=200, seed=seed)
        out["branch"] = control
        out["depth_profile"] = T.depth_profile(filters, model.parents)
        order = tree_order(list(model.parents))
        out["figures"] = [] if not figures else [save(tree_image(filters, model.parents), "lateral_tree.png"),
                          save(s_matrix_image(s, order), "lateral_tree_S.png"),
                          save(s_matrix_image(s0, order), "lateral_tree_S_start.png")]
    else:
        side = model.grid[0]
        omap = T.orientation_map(filters, model.grid)
        pins = T.find_pinwheels(omap.theta)
        summary = T.summarise(omap, wrap=True, pins=pins).as_dict()
        out["map"] = {**summary, "periods_across_grid": side / summary["spacing"],
                      "shuffled_grid": L.grid_shuffle_control(filters, model.grid, wrap=True, seed=seed)}
        out["figures"] = [] if not figures else [save(atlas(filters, side), "lateral_2d_filters.png", 2),
                          save(orientation_image(omap, pins), "lateral_2d_map.png"),
                          save(inhibition_fields(s, side, [0, side * side // 2 + side // 2]), "lateral_2d_S_rows.png"),
                          save(s_matrix_image(s, list(range(side * side)), cell=2), "lateral_2d_S.png")]
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help=f"{QUICK_STEPS} training steps each (smoke run; "
                    "results to lateral_quick.json, no figures)")
    ap.add_argument("--only", choices=["lateral-tree", "lateral-2d"])
    ap.add_argument("--steps", type=int, help="training steps (default: the preset's)")
    ap.add_argument("--fixed-s", action="store_true", help="ablation: S not learned (results under '<preset>/S-fixed', "
                    "no figures)")
    ap.add_argument("--save-weights", type=Path, help="folder for each trained model's weights (<preset>.npz, with S_start)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    steps = args.steps or (QUICK_STEPS if args.quick else None)
    out_path = ROOT / "bench" / "results" / ("lateral_quick.json" if args.quick or args.steps else "lateral.json")
    results = json.loads(out_path.read_text()) if args.only and out_path.exists() else {}
    keys = []
    for pid in ("lateral-tree", "lateral-2d"):
        if args.only in (None, pid):
            key = f"{pid}/S-fixed" if args.fixed_s else pid
            results[key] = measure(pid, steps, save_weights=args.save_weights, fixed_s=args.fixed_s,
                                   figures=not (args.quick or args.fixed_s or args.steps))
            keys.append(key)
    results["machine"] = f"{platform.machine()} CPU, 1 torch thread{' (--quick)' if args.quick else ''}"
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(results, indent=1))
    for pid in keys:
        r = results[pid]
        h, t, s = r["held_out"], r["training"], r["S"]
        print(f"== {pid}: {r['steps']} steps in {r['wall_s']} s wall, {r.get('cpu_s', '?')} s CPU (load {r['load_before']} → {r['load_after']}); {r['held_out_note']}")
        print(f"  held-out: active/patch {h['active_per_patch']:.2f}, ever active {h['ever_active_share']:.1%}, "
              f"dead {h['dead_units']}, rel. error {h['relative_error']:.3f} (‖r‖/‖x‖ {h['relative_error_norm']:.3f}), "
              f"inhibition {h['inhibition_term']:.4f}, cross co-active {h['cross_coactive_share']:.1%}")
        print(f"  training: active/patch {t['active_per_patch']:.2f}, rel. error {t['relative_error']:.3f}")
        print(f"  S: spread {s['spread']:.4f} (start {s['spread_initial']:.4f}), max change {s['max_change']:.4f}, "
              f"‖ΔS‖/‖S₀‖ {s['relative_change']:.3f}, at cap {s['at_cap_share']:.1%}, at 0 {s['at_zero_share']:.1%}")
        if "branch" in r:
            b = r["branch"]
            o = b["observed"]
            print(f"  |cos| within {o['within']:.3f} / across {o['across']:.3f} = {o['ratio']:.2f}; relabelled "
                  f"{b['shuffled_ratio_mean']:.2f} ± {b['shuffled_ratio_std']:.2f} (p95 {b['shuffled_ratio_p95']:.2f}, p {b['p_value']:.3f})")
            print(f"  orientation cos 2Δθ within {o['orientation_within']:.3f} / across {o['orientation_across']:.3f}, gap "
                  f"{o['orientation_gap']:.3f}; relabelled {b['shuffled_orientation_gap_mean']:.3f} ± "
                  f"{b['shuffled_orientation_gap_std']:.3f} (p {b['orientation_gap_p_value']:.3f})")
            print(f"  power-spectrum cos within {o['spectrum_within']:.3f} / across {o['spectrum_across']:.3f} = "
                  f"{o['spectrum_ratio']:.2f}; relabelled {b['shuffled_spectrum_ratio_mean']:.2f} ± "
                  f"{b['shuffled_spectrum_ratio_std']:.2f} (p95 {b['shuffled_spectrum_ratio_p95']:.2f}, p {b['spectrum_ratio_p_value']:.3f})")
        if "map" in r:
            m = r["map"]
            print(f"  map: smoothness {m['smoothness']:.3f} (shuffled {m['shuffled_grid']['shuffled_mean']:.3f}), "
                  f"selective {m['selective_fraction']:.0%}, Λ {m['spacing']:.2f} units, {m['periods_across_grid']:.1f} "
                  f"periods across, pin-wheels {m['n_pinwheels']}")


if __name__ == "__main__":
    main()
