"""LISTA and later variants against FISTA: iterations to equal accuracy on held-out patches, T = 1…16.

    PYTHONPATH=. python bench/lista.py            # about 25 minutes on two shared CPU cores, one thread
    PYTHONPATH=. python bench/lista.py --quick    # T = 1, 2, 4 and few steps: a smoke run (~2 minutes)

1. Dictionary: the `lista-vs-fista` preset's sparse coding (128 atoms on whitened 8×8 patches, λ = 0.5,
   FISTA-100 codes, Adam 1e-3 on W_d, 800 steps of batch 128) on the run's training pool (20,000 patches
   from the photographs' training regions), then frozen.
2. Held-out: 2,000 patches from the photographs' held-out regions (`natural.heldout_patches`, seed 12345);
   the optimal codes z* from 1,000 FISTA iterations in float64.
3. For each T and variant (`ListaConfig.variant`: lista, lista_untied, alista; lista_cp at T = 1, 2, 4, 8, 16) an encoder
   initialised from ISTA (ALISTA: analytic W) is trained on the energy E(x, z_T) over the training pool
   (Adam with cosine decay, batch 256) — the energy loss also gives the best code error (a side run).
4. Accuracy of z_T: energy gap mean E(x, z_T) − mean E(x, z*), and code error Σ‖z_T − z*‖²/Σ‖z*‖²;
   then the fewest FISTA iterations k (exact step 1/L) reaching each: ratio = k / T.
5. Wall time: the encoder's forward pass on the 2,000 patches next to FISTA's k iterations, in one run.

Writes bench/results/lista.json and docs/figures/lista_dictionary.png (a full run only; --quick and side
runs write bench/results/lista_side.json.tmp or --out); prints the table.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import torch
from PIL import Image

from pinwheel import inference
from pinwheel.configs import RunConfig, deep_merge, preset_by_id
from pinwheel.configs.lista import ListaConfig
from pinwheel.data import build_dataset, natural
from pinwheel.models.lista import ListaModel, make_encoder
from pinwheel.panels.filter_grid import atlas

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "results" / "lista.json"
FIG = ROOT / "docs" / "figures" / "lista_dictionary.png"
VARIANTS = ("lista", "lista_untied", "lista_cp", "alista")
CP_TS = (1, 2, 4, 8, 16)
LR = {"lista": 3e-3, "lista_untied": 3e-3, "lista_cp": 3e-3, "alista": 1e-2}  # ALISTA: 2T scalars, a larger step


def learn_dictionary(steps: int, seed: int = 0):
    """The preset's sparse coding on the training pool; returns the config, W_d (n, m) and the pool (N, n)."""
    cfg = RunConfig.model_validate(deep_merge(preset_by_id("lista-vs-fista")["config"], {
        "model": {"fista_steps": 100, "dictionary_steps": steps}, "data": {"pool_size": 20_000}}))
    data = build_dataset(cfg.data, seed)
    g = torch.Generator().manual_seed(seed)
    model = ListaModel(cfg.model, data.shape, g)
    opt = torch.optim.Adam([model.W_d], lr=cfg.train.lr)
    for step in range(steps):
        xb, _ = data.batch(cfg.train.batch_size, g)
        recon = 0.5 * (xb - model.reference(xb) @ model.W_d.T).pow(2).sum(1).mean()
        opt.zero_grad()
        recon.backward()
        opt.step()
        model.project_()
    return cfg, model.W_d.detach().clone(), data.x


def train_encoder(variant: str, W: torch.Tensor, x: torch.Tensor, lam: float, T: int, steps: int, seed: int = 0):
    enc = make_encoder(ListaConfig(units=W.shape[1], lam=lam, steps=T, variant=variant), W)
    lr = LR[variant]
    opt = torch.optim.Adam(enc.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed)
    for s in range(steps):
        for group in opt.param_groups:
            group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * s / steps))
        xb = x[torch.randint(0, len(x), (256,), generator=g)]
        loss = inference.energy(xb, W, enc(xb), lam).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return enc


def fista_curves(x, W, lam, z_star, max_steps: int) -> dict[str, list[float]]:
    """Both accuracy gaps after every FISTA iteration 1…max_steps (one pass)."""
    curves = {"energy": [], "code": []}
    for z in inference.proximal_iterates(x, W, inference.l1_prox(lam), max_steps, L=inference.lipschitz(W)):
        for measure in curves:
            curves[measure].append(inference.accuracy_gap(x, W, lam, z, z_star, measure))
    return curves


def first_reaching(curve: list[float], target: float) -> int | None:
    return next((k for k, gap in enumerate(curve, start=1) if gap <= target), None)


def seconds(fn, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="T = 1, 2, 4, short training: a smoke run")
    parser.add_argument("--steps", type=int, default=None, help="training steps per encoder (default 600)")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated subset of " + ", ".join(VARIANTS))
    parser.add_argument("--max-T", type=int, default=16)
    parser.add_argument("--Ts", default=None, help="comma-separated T values instead of 1…max-T (a side run)")
    parser.add_argument("--out", default=None, help="write the JSON here instead of bench/results/lista.json")
    args = parser.parse_args()
    variants = [v for v in args.variants.split(",") if v]
    if bad := [v for v in variants if v not in VARIANTS]:
        parser.error(f"--variants: unknown {bad}; choose from {', '.join(VARIANTS)}")
    torch.set_num_threads(1)
    load_before, t_start = os.getloadavg(), time.monotonic()
    quick = args.quick
    steps = args.steps or (60 if quick else 600)
    Ts = [1, 2, 4] if quick else list(range(1, args.max_T + 1))
    if args.Ts:
        Ts = [int(t) for t in args.Ts.split(",")]
    side_run = bool(args.Ts or args.steps or args.out or args.variants != ",".join(VARIANTS))
    held_n, opt_its, max_fista = (500, 300, 300) if quick else (2_000, 1_000, 1_000)

    t = time.monotonic()
    cfg, W, x_train, = learn_dictionary(100 if quick else 800)
    lam, dict_s = cfg.model.lam, time.monotonic() - t
    x = torch.from_numpy(natural.heldout_patches(8, held_n, seed=12345).reshape(held_n, -1))
    z_star = inference.fista(x.double(), W.double(), lam, opt_its).float()
    curves = fista_curves(x, W, lam, z_star, max_fista)
    gram = W.T @ W
    coherence = float((gram - torch.diag(torch.diag(gram))).abs().max())
    print(f"dictionary {W.shape[1]} atoms, {dict_s:.0f} s; mutual coherence {coherence:.2f}; "
          f"z*: {float((z_star != 0).float().sum(1).mean()):.1f} active of {W.shape[1]}; held-out {held_n} patches")

    rows = []
    L = inference.lipschitz(W)
    for T in Ts:
        for variant in variants:
            if variant == "lista_cp" and not quick and not args.Ts and T not in CP_TS:
                continue  # LISTA-CP trains like untied LISTA (T·n·m weights) and lands with plain LISTA: 5 T's
            t = time.monotonic()
            enc = train_encoder(variant, W, x_train, lam, T, steps)
            train_s = time.monotonic() - t
            with torch.no_grad():
                z = enc(x)
                z_fista_T = inference.fista(x, W, lam, T, L=L)
            row = {"T": T, "variant": variant, "train_steps": steps, "train_seconds": round(train_s, 1)}
            for measure in ("energy", "code"):
                gap = inference.accuracy_gap(x, W, lam, z, z_star, measure)
                k = first_reaching(curves[measure], gap)
                row[f"{measure}_gap"] = gap
                row[f"{measure}_gap_fista_T"] = inference.accuracy_gap(x, W, lam, z_fista_T, z_star, measure)
                row[f"fista_iterations_{measure}"] = k
                row[f"ratio_{measure}"] = k / T if k else None
            if T == Ts[0] and variant == variants[0]:  # the one-pass curve agrees with the library's counter
                assert row["fista_iterations_energy"] == inference.iterations_to_accuracy(
                    x, W, lam, row["energy_gap"], z_star, max_steps=max_fista, L=L)
            k = row["fista_iterations_code"] or max_fista
            with torch.no_grad():
                row["encode_ms"] = round(1e3 * seconds(lambda: enc(x)), 2)
                row["fista_matched_ms"] = round(1e3 * seconds(lambda: inference.fista(x, W, lam, k, L=L)), 2)
            rows.append(row)
            print(f"T={T:2d} {variant:12s} energy gap {row['energy_gap']:.4f} (FISTA-T {row['energy_gap_fista_T']:.4f}) "
                  f"-> FISTA {row['fista_iterations_energy']} its, {row['ratio_energy'] or float('nan'):.1f}x | "
                  f"code err {row['code_gap']:.4f} (FISTA-T {row['code_gap_fista_T']:.4f}) -> FISTA "
                  f"{row['fista_iterations_code']} its, {row['ratio_code'] or float('nan'):.1f}x | "
                  f"{row['encode_ms']:.1f} ms vs {row['fista_matched_ms']:.1f} ms | train {train_s:.0f} s", flush=True)

    result = {
        "command": " ".join(["PYTHONPATH=. python bench/lista.py", *sys.argv[1:]]),
        "dictionary": {"units": W.shape[1], "patch": 8, "lam": lam, "steps": 100 if quick else 800, "seconds": round(dict_s, 1),
                       "mutual_coherence": coherence, "lipschitz": L,
                       "optimum_active_units": float((z_star != 0).float().sum(1).mean())},
        "heldout": {"patches": held_n, "source": "natural.heldout_patches(8, n, seed=12345): held-out regions",
                    "optimum": f"FISTA {opt_its} iterations, float64"},
        "training": {"loss": "energy", "steps": steps, "batch": 256, "lr": LR, "schedule": "cosine",
                     "pool": "20,000 training-region patches, seed 0"},
        "fista_curve": {str(k): {m: curves[m][k - 1] for m in curves} for k in (1, 2, 4, 8, 16, 32, 64, 128, 256)
                        if k <= max_fista},
        "rows": rows,
        "wall_seconds": round(time.monotonic() - t_start, 1),
        "load_before": [round(v, 2) for v in load_before], "load_after": [round(v, 2) for v in os.getloadavg()],
        "torch_threads": torch.get_num_threads(),
    }
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    elif quick or side_run:  # a smoke or side run does not overwrite the measured table
        (OUT.parent / "lista_side.json.tmp").write_text(json.dumps(result, indent=1) + "\n")
    else:  # the measured table, and the dictionary it was measured on
        OUT.write_text(json.dumps(result, indent=1) + "\n")
        Image.fromarray(atlas(W.T.reshape(-1, 8, 8).numpy(), 16)).resize((16 * 9 * 4, 8 * 9 * 4), Image.NEAREST).save(FIG)
    print("best ratio per T:", {T: max((r["ratio_energy"] or 0) for r in rows if r["T"] == T) for T in Ts})
    print(f"wall {result['wall_seconds']} s, load {result['load_before']} -> {result['load_after']}")


if __name__ == "__main__":
    main()
