"""Science II bench: pin-wheels from local filters, tree / 2-D lateral inhibition, conv-stack probes.

    PYTHONPATH=. python bench/science2.py [--quick]

Trains each preset (steps as in the preset, lateral-2d's cut to FULL_STEPS; a few hundred with --quick) on one CPU thread, prints a table,
writes bench/results/science2.json and figures under docs/figures/science2_*.png.
"""
from __future__ import annotations

import argparse
import colorsys
import json
import math
import platform
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from bench.step_check import build
from pinwheel.analysis import topography as T
from pinwheel.configs import RunConfig, deep_merge, preset_by_id
from pinwheel.panels.filter_grid import atlas

ROOT = Path(__file__).resolve().parent.parent
FIG = ROOT / "docs" / "figures"
ORGANISED = 0.5  # smoothness at which the map counts as visibly organised


def run(preset_id: str, override: dict, every: int, probe=None, device: str = "cpu"):
    """Train a preset with the model's own train_step; call probe(model, step, seconds) every `every` steps."""
    cfg = RunConfig.model_validate(deep_merge(preset_by_id(preset_id)["config"], override))
    tc = cfg.train
    model, data, opt, gen = build(cfg, device, seed=tc.seed)
    start, trace = time.monotonic(), []
    for step in range(tc.steps):
        x, y = data.batch(tc.batch_size, gen)
        model.train_step(x, y, step, opt)
        if probe and ((step + 1) % every == 0 or step + 1 == tc.steps):
            trace.append(probe(model, step + 1, time.monotonic() - start))
    return cfg, data, model, trace, time.monotonic() - start


def save(image: np.ndarray | Image.Image, name: str, scale: int = 1) -> str:
    im = image if isinstance(image, Image.Image) else Image.fromarray(image)
    if scale > 1:
        im = im.resize((im.width * scale, im.height * scale), Image.NEAREST)
    FIG.mkdir(parents=True, exist_ok=True)
    im.save(FIG / name)
    return f"docs/figures/{name}"


def orientation_image(omap: T.OrientationMap, pins: list[T.Pinwheel], cell: int = 12) -> Image.Image:
    """Hue = θ, brightness = selectivity; pin-wheels as white (+) / black (−) dots."""
    rows, cols = omap.theta.shape
    r = np.clip(omap.selectivity / max(omap.selectivity.max(), 1e-9), 0, 1)
    rgb = np.array([[colorsys.hsv_to_rgb(omap.theta[i, j] / np.pi, 1.0, 0.25 + 0.75 * r[i, j]) for j in range(cols)]
                    for i in range(rows)])
    im = Image.fromarray((rgb * 255).astype(np.uint8)).resize((cols * cell, rows * cell), Image.NEAREST)
    draw = ImageDraw.Draw(im)
    for p in pins:
        x, y = (p.col + 0.5) * cell, (p.row + 0.5) * cell
        draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=(255, 255, 255) if p.handedness > 0 else (0, 0, 0),
                     outline=(128, 128, 128))
    return im


def tree_image(filters: np.ndarray, parents: np.ndarray, scale: int = 4) -> Image.Image:
    """Each node's filter, one row per tree level, children under their parent."""
    depth = T.depths(parents)
    m, h, w = filters.shape
    leaves = int((depth == depth.max()).sum())
    tile = (w + 2) * scale
    width, height = leaves * tile, (depth.max() + 1) * (h * scale + 24)
    im = Image.new("RGB", (width, height), (40, 40, 40))
    draw = ImageDraw.Draw(im)
    slot = {}  # x centre of every node: leaves evenly, parents over their children
    for i in np.flatnonzero(depth == depth.max()):
        slot[i] = (len(slot) + 0.5) * tile
    for d in range(depth.max() - 1, -1, -1):
        for i in np.flatnonzero(depth == d):
            kids = [k for k in range(m) if parents[k] == i]
            slot[i] = float(np.mean([slot[k] for k in kids])) if kids else width / 2
    centre = {}
    for i in range(m):
        f = filters[i] / (np.abs(filters[i]).max() + 1e-12)
        t = Image.fromarray(np.clip(127.5 + 127.5 * f, 0, 255).astype(np.uint8)).resize((w * scale, h * scale),
                                                                                      Image.NEAREST)
        x0, y0 = int(slot[i] - w * scale / 2), int(depth[i] * (h * scale + 24) + 12)
        im.paste(t.convert("RGB"), (x0, y0))
        centre[i] = (slot[i], y0, y0 + h * scale)
    for i in range(m):
        if parents[i] >= 0:
            p = centre[parents[i]]
            draw.line([(p[0], p[2]), (centre[i][0], centre[i][1])], fill=(160, 160, 160))
    return im


def pinwheels(quick: bool) -> dict:
    def probe(model, step, seconds):
        omap = T.orientation_map(model.filter_bank()["filters"], (model.side, model.side))
        return {"step": step, "seconds": round(seconds, 1), **T.summarise(omap).as_dict(),
                "orientation_entropy": T.orientation_entropy(omap.theta, omap.selectivity)}

    steps = 600 if quick else None
    cfg, _, model, trace, wall = run("pinwheels-local", {"train": {"steps": steps}} if steps else {}, 100, probe)
    bank = model.filter_bank()
    omap = T.orientation_map(bank["filters"], (model.side, model.side))
    pins = T.find_pinwheels(omap.theta)
    # pools are cut at the grid's edge, so edge units are pulled together less: count pin-wheels and
    # area again without a band of pool // 2 units along the edge
    margin, side = cfg.model.pool // 2, model.side
    inner = [p for p in pins if margin <= p.row <= side - 1 - margin and margin <= p.col <= side - 1 - margin]
    inner_area = (side - 1 - 2 * margin) ** 2
    final = trace[-1]
    organised = next((t for t in trace if t["smoothness"] >= ORGANISED), None)
    return {"steps": cfg.train.steps, "grid": model.side, "receptive_field": cfg.model.receptive_field,
            "wall_s": round(wall, 1), **{k: final[k] for k in final if k not in ("step", "seconds")},
            "seconds_to_organised": organised["seconds"] if organised else None,
            "edge_margin": margin, "n_pinwheels_inner": len(inner),
            "density_inner": T.pinwheel_density(len(inner), final["spacing"], inner_area),
            "step_organised": organised["step"] if organised else None, "trace": trace,
            "figures": [save(atlas(bank["filters"], model.side), "science2_pinwheel_filters.png", 2),
                        save(orientation_image(omap, pins), "science2_pinwheel_map.png")]}


FULL_STEPS = {"lateral-2d": 1000}  # 256 units × 60 inference steps: the preset's 3,000 steps take ~6 min on one thread


def lateral(preset_id: str, quick: bool) -> dict:
    steps = 300 if quick else FULL_STEPS.get(preset_id)
    cfg, _, model, _, wall = run(preset_id, {"train": {"steps": steps}} if steps else {}, 0)
    bank = model.filter_bank()
    out = {"steps": cfg.train.steps, "units": cfg.model.units, "wall_s": round(wall, 1)}
    if model.parents is not None:
        out.update(T.branch_similarity(bank["filters"], model.parents))
        out["by_depth"] = T.depth_profile(bank["filters"], model.parents)
        out["figures"] = [save(tree_image(bank["filters"], model.parents), f"science2_{preset_id}.png")]
    else:
        omap = T.orientation_map(bank["filters"], model.grid)
        out.update({k: v for k, v in T.summarise(omap).as_dict().items()})
        out["smoothness"] = T.smoothness(omap.theta, wrap=True)
        pins = T.find_pinwheels(omap.theta)
        out["figures"] = [save(atlas(bank["filters"], model.grid[1]), f"science2_{preset_id}_filters.png", 2),
                          save(orientation_image(omap, pins), f"science2_{preset_id}_map.png")]
    return out


def conv_stack(quick: bool) -> dict:
    override = {"train": {"steps": 200}, "model": {"steps_per_layer": 100}} if quick else {}
    cfg, data, model, _, wall = run("conv-stack", override, 0)
    acc = model.probe_accuracies(data, train_size=len(data.x))
    bank = model.filter_bank()
    return {"data": cfg.data.kind, "train": len(data.x), "test": len(data.x_test), "wall_s": round(wall, 1), **acc,
            "figures": [save(atlas(bank["filters"], bank["layout"].get("cols", 8)), "science2_conv_filters.png", 6)]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="a few hundred steps each (smoke run)")
    ap.add_argument("--only", choices=["pinwheels", "lateral-tree", "lateral-2d", "conv-stack"])
    args = ap.parse_args()
    torch.set_num_threads(1)
    jobs = {"pinwheels": lambda: pinwheels(args.quick), "lateral-tree": lambda: lateral("lateral-tree", args.quick),
            "lateral-2d": lambda: lateral("lateral-2d", args.quick), "conv-stack": lambda: conv_stack(args.quick)}
    out_path = ROOT / "bench" / "results" / "science2.json"
    results = json.loads(out_path.read_text()) if args.only and out_path.exists() else {}
    start = time.monotonic()
    for name, job in jobs.items():
        if args.only in (None, name):
            results[name] = job()
    results["machine"] = (f"{platform.machine()} CPU, {torch.get_num_threads()} torch thread, sections one after "
                          f"another{' (--quick)' if args.quick else ''}{f' (--only {args.only})' if args.only else ''}")
    if not args.only:
        results["total_wall_s"] = round(time.monotonic() - start, 1)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(results, indent=1))
    pw, lt, l2, cs = (results.get(k, {}) for k in ("pinwheels", "lateral-tree", "lateral-2d", "conv-stack"))
    rows = [
        ("pin-wheels: smoothness ⟨cos 2Δθ⟩", pw.get("smoothness")),
        ("pin-wheels: orientation-selective share (r > 0.3)", pw.get("selective_fraction")),
        ("pin-wheels: orientation entropy (1 uniform, 0 one θ)", pw.get("orientation_entropy")),
        ("pin-wheels: count (+ / −)", f"{pw.get('n_pinwheels')} ({pw.get('n_left')} / {pw.get('n_right')})" if pw else None),
        ("pin-wheels: column spacing Λ (grid units)", pw.get("spacing")),
        ("pin-wheels: density ρ (cortex: π ≈ 3.14)", pw.get("density")),
        ("pin-wheels: count / ρ away from the grid's edge", f"{pw.get('n_pinwheels_inner')} / {pw.get('density_inner', 0):.2f}" if pw else None),
        (f"pin-wheels: seconds until smoothness ≥ {ORGANISED}", pw.get("seconds_to_organised")),
        ("lateral tree: |cos| within branch", lt.get("within")),
        ("lateral tree: |cos| across branches", lt.get("across")),
        ("lateral tree: within / across", lt.get("ratio")),
        ("lateral tree: spatial frequency by depth", (lt.get("by_depth") or {}).get("frequency")),
        ("lateral tree: selectivity by depth", (lt.get("by_depth") or {}).get("selectivity")),
        ("lateral 2-D: smoothness", l2.get("smoothness")),
        ("conv stack: probe, raw pixels", cs.get("probe_pixels")),
        ("conv stack: probe, layer 1", cs.get("probe_layer1")),
        ("conv stack: probe, layers 1+2 (stack output)", cs.get("probe_layer2")),
        ("conv stack: probe, layers 1 and 2 concatenated", cs.get("probe_all_layers")),
    ]
    for label, value in rows:
        if isinstance(value, float):
            value = f"{value:.3f}"
        elif isinstance(value, list):
            value = " → ".join(f"{v:.3f}" for v in value)
        print(f"{label:<52} {value}")


if __name__ == "__main__":
    main()
