"""Pin-wheel bench (issue 13): the two orientation-map presets, 3 seeds each, measured on their valid region.

    PYTHONPATH=. python bench/pinwheels.py [--quick] [--presets pinwheels-local topographic-natural] [--seeds 0 1 2]

Trains every preset × seed on one torch thread, one after the other, as committed (`--quick`: a few hundred
steps, written to bench/results/pinwheels_quick.json instead). Every `EVERY` steps it measures the map
(pinwheel.analysis.topography.summarise over the valid region the model's layout names: a torus whole, a
plain grid less its border band) and notes the first time every target holds at once:

    smoothness ≥ 0.7, orientation-selective share (r > 0.3) ≥ 85 %, ρ within π ± 30 %, ≥ 3 Λ a side,

with ρ counted as Kaschube et al. (2010) count it, on the map band-passed around Λ (`density_bandpassed`);
the raw count (`density`) is reported beside it and `*_raw` says whether the targets hold with it instead.

Measuring is not counted in the training time, given both as wall time (on this shared machine it
includes waiting for a core) and as the process's CPU time (what the run costs on a core of its own). Prints a table, writes bench/results/pinwheels.json
and, for the first seed of each preset, docs/figures/pinwheels_<preset>_map.png (hue θ, brightness r,
white / black dots: +/− pin-wheels, grey frame: the border band left out) and _filters.png.
"""
from __future__ import annotations

import argparse
import colorsys
import json
import os
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
PRESETS = ("pinwheels-local", "topographic-natural")
TARGETS = {"smoothness": 0.7, "selective_fraction": 0.85, "density": (np.pi * 0.7, np.pi * 1.3), "periods": 3.0}
EVERY = {"pinwheels-local": 250, "topographic-natural": 250}


def measure(model) -> tuple[T.MapSummary, T.OrientationMap, list[T.Pinwheel], dict]:
    bank = model.filter_bank()
    layout = bank["layout"]
    wrap, border = bool(layout.get("wrap", False)), int(layout.get("border", 0))
    omap = T.orientation_map(np.asarray(bank["filters"]), (layout["rows"], layout["cols"]))
    pins = T.find_pinwheels(omap.theta, wrap)
    return T.summarise(omap, wrap=wrap, pins=pins, border=border), omap, pins, bank


def meets_targets(s: T.MapSummary, raw: bool = False) -> bool:
    lo, hi = TARGETS["density"]
    rho = s.density if raw else s.density_bandpassed
    return (s.smoothness >= TARGETS["smoothness"] and s.selective_fraction >= TARGETS["selective_fraction"]
            and rho is not None and lo <= rho <= hi and s.periods >= TARGETS["periods"])


def train(preset_id: str, seed: int, steps: int | None, device: str = "cpu") -> dict:
    override = {"train": {"seed": seed, **({"steps": steps} if steps else {})}}
    cfg = RunConfig.model_validate(deep_merge(preset_by_id(preset_id)["config"], override))
    tc = cfg.train
    model, data, opt, gen = build(cfg, device, seed=tc.seed)
    every = min(EVERY[preset_id], max(tc.steps // 4, 1))
    trained, cpu, trace, reached, reached_raw = 0.0, 0.0, [], None, None
    for step in range(tc.steps):
        t0, c0 = time.perf_counter(), time.process_time()
        x, y = data.batch(tc.batch_size, gen)
        model.train_step(x, y, step, opt)
        if device != "cpu":
            torch.cuda.synchronize()
        trained += time.perf_counter() - t0
        cpu += time.process_time() - c0  # CPU seconds: what the run costs on a core of its own
        if (step + 1) % every == 0 or step + 1 == tc.steps:
            s = measure(model)[0]
            trace.append({"step": step + 1, "train_s": round(trained, 1), "cpu_s": round(cpu, 1), "smoothness": round(s.smoothness, 4),
                          "selective_fraction": round(s.selective_fraction, 4), "spacing": round(s.spacing, 3),
                          "n_pinwheels": s.n_pinwheels, "density": None if s.density is None else round(s.density, 3),
                          "density_bandpassed": None if s.density_bandpassed is None else round(s.density_bandpassed, 3)})
            print(f"  {preset_id} seed {seed} step {step + 1}: {trained:.0f} s wall {cpu:.0f} s CPU, smoothness "
                  f"{s.smoothness:.3f} selective {s.selective_fraction:.2f} Λ {s.spacing:.2f} pin-wheels {s.n_pinwheels} "
                  f"ρ {s.density if s.density is None else round(s.density, 2)} ρ_band "
                  f"{s.density_bandpassed if s.density_bandpassed is None else round(s.density_bandpassed, 2)}", flush=True)
            if reached is None and meets_targets(s):
                reached = {"step": step + 1, "train_s": round(trained, 1), "cpu_s": round(cpu, 1)}
            if reached_raw is None and meets_targets(s, raw=True):
                reached_raw = {"step": step + 1, "train_s": round(trained, 1), "cpu_s": round(cpu, 1)}
    summary, omap, pins, bank = measure(model)
    return {"seed": seed, "steps": tc.steps, "train_s": round(trained, 1), "cpu_s": round(cpu, 1), "targets_reached_at": reached,
            "meets_targets_at_end": meets_targets(summary), "targets_reached_at_raw": reached_raw,
            "meets_targets_at_end_raw": meets_targets(summary, raw=True), **summary.as_dict(),
            "orientation_entropy": T.orientation_entropy(omap.theta, omap.selectivity), "trace": trace,
            "_figure": (omap, pins, bank, summary)}


def map_figure(omap: T.OrientationMap, pins: list[T.Pinwheel], summary: T.MapSummary, cell: int = 10) -> Image.Image:
    """Hue = θ, brightness = selectivity; pin-wheels white (+) / black (−); the left-out border band framed."""
    rows, cols = omap.theta.shape
    r = np.clip(omap.selectivity / max(float(omap.selectivity.max()), 1e-9), 0, 1)
    rgb = np.array([[colorsys.hsv_to_rgb(omap.theta[i, j] / np.pi, 1.0, 0.25 + 0.75 * r[i, j]) for j in range(cols)]
                    for i in range(rows)])
    im = Image.fromarray((rgb * 255).astype(np.uint8)).resize((cols * cell, rows * cell), Image.NEAREST)
    draw = ImageDraw.Draw(im)
    b = summary.border
    if b:
        draw.rectangle([b * cell, b * cell, (cols - b) * cell - 1, (rows - b) * cell - 1], outline=(200, 200, 200))
    for p in pins:
        x, y = (p.col + 0.5) * cell, (p.row + 0.5) * cell  # a plaquette's centre lies between four units
        draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=(255, 255, 255) if p.handedness > 0 else (0, 0, 0),
                     outline=(128, 128, 128))
    return im


def spread(values: list) -> dict:
    v = np.array([np.nan if x is None else x for x in values], dtype=float)
    ok = v[np.isfinite(v)]
    if not len(ok):
        return {"mean": None, "min": None, "max": None, "sd": None, "n": 0}
    return {"mean": round(float(ok.mean()), 4), "min": round(float(ok.min()), 4), "max": round(float(ok.max()), 4),
            "sd": round(float(ok.std(ddof=1)), 4) if len(ok) > 1 else 0.0, "n": int(len(ok))}


def save(results: dict, preset_id: str, runs: list[dict], args, out_path: Path) -> None:
    keys = ("smoothness", "selective_fraction", "spacing", "periods", "n_pinwheels", "density", "n_pinwheels_bandpassed",
            "density_bandpassed", "train_s", "cpu_s")
    results["presets"][preset_id] = {
        "config": preset_by_id(preset_id)["config"], "runs": runs,
        "summary": {**{k: spread([r[k] for r in runs]) for k in keys},
                    "seconds_to_targets": spread([(r["targets_reached_at"] or {}).get("train_s") for r in runs]),
                    "cpu_seconds_to_targets": spread([(r["targets_reached_at"] or {}).get("cpu_s") for r in runs]),
                    "seeds_meeting_targets_at_end": sum(r["meets_targets_at_end"] for r in runs),
                    "seeds_reaching_targets": sum(r["targets_reached_at"] is not None for r in runs),
                    "seeds_meeting_targets_at_end_raw": sum(r["meets_targets_at_end_raw"] for r in runs),
                    "seeds_reaching_targets_raw": sum(r["targets_reached_at_raw"] is not None for r in runs)}}
    results["load_after"] = os.getloadavg()
    out = dict(results)
    if out_path.exists() and set(args.presets) != set(PRESETS):  # a run of some presets keeps the others' results
        earlier = json.loads(out_path.read_text())
        out["presets"] = {**{k: v for k, v in earlier.get("presets", {}).items() if k not in args.presets},
                          **results["presets"]}
        out["machine"] = results["machine"] + f"; {', '.join(args.presets)} measured in a separate process"
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(out, indent=1))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="300 steps per run; results to pinwheels_quick.json")
    ap.add_argument("--presets", nargs="+", default=list(PRESETS), choices=PRESETS)
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--device", default="cpu", help="cuda: train there (results to pinwheels_cuda.json)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    name = "pinwheels" + ("_quick" if args.quick else "") + ("" if args.device == "cpu" else f"_{args.device}")
    out_path = ROOT / "bench" / "results" / f"{name}.json"
    results: dict = {"targets": {"smoothness": 0.7, "selective_fraction": 0.85,
                                 "density": "π ± 30 % (2.20 … 4.08), counted on the map band-passed around Λ",
                                 "hypercolumns_per_side": 3, "wall_s": {"pinwheels-local": 600, "topographic-natural": 120}},
                     "machine": f"{platform.machine()} CPU, {os.cpu_count()} cores shared, 1 torch thread, runs one "
                                f"after the other", "load_before": os.getloadavg(), "presets": {}}
    for preset_id in args.presets:
        runs = []
        for seed in args.seeds:
            run = train(preset_id, seed, 300 if args.quick else None, args.device)
            omap, pins, bank, summary = run.pop("_figure")
            if seed == args.seeds[0] and not args.quick and args.device == "cpu":
                FIG.mkdir(parents=True, exist_ok=True)
                map_figure(omap, pins, summary).save(FIG / f"pinwheels_{preset_id}_map.png")
                tiles = Image.fromarray(atlas(np.asarray(bank["filters"]), bank["layout"]["cols"]))
                tiles.resize((tiles.width * 2, tiles.height * 2), Image.NEAREST).save(
                    FIG / f"pinwheels_{preset_id}_filters.png")
            runs.append(run)
            run["load_at_end"] = os.getloadavg()
            print(f"{preset_id} seed {seed}: {run['train_s']} s wall, {run['cpu_s']} s CPU, {run['steps']} steps | smoothness "
                  f"{run['smoothness']:.3f} selective {run['selective_fraction']:.2f} Λ {run['spacing']:.2f} "
                  f"({run['periods']:.2f} per side) pin-wheels {run['n_pinwheels']} ρ "
                  f"{run['density'] if run['density'] is None else round(run['density'], 2)} ρ_band "
                  f"{run['density_bandpassed'] if run['density_bandpassed'] is None else round(run['density_bandpassed'], 2)} "
                  f"{run['note'] or ''} | targets at {run['targets_reached_at']}", flush=True)
            save(results, preset_id, runs, args, out_path)  # after every run: a cut-short bench keeps its runs
        print(preset_id, json.dumps(results["presets"][preset_id]["summary"]), flush=True)
    print("wrote", out_path.relative_to(ROOT), flush=True)


if __name__ == "__main__":
    main()
