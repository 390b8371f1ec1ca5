"""Sparse coding against its peer: Pinwheel's sparse-coding form vs scikit-learn's MiniBatchDictionaryLearning.

Same problem for every learner: whitened 12×12 natural patches (training regions, pool of 50,000, seed 0),
256 atoms, objective per patch  ½‖x − D z‖² + α‖z‖₁  with atoms of norm ≤ 1 (scikit-learn: rows of
components_; Pinwheel: columns of W_d — the same numbers), α = 1 (Pinwheel's λ, blocks of size 1: Ω = ‖z‖₁),
batches of 256 drawn from the same pool. Learners, run side by side in one process, round-robin:

  pinwheel-online   sparse-coding form, dictionary_update "online" (pinwheel/dictionary.py), 10 FISTA steps
  pinwheel-adam     the same form with Adam (lr 3e-3) on W_d and 30 FISTA steps: what issue 13 re-checked
  sklearn-lars      MiniBatchDictionaryLearning(fit_algorithm="lars"), scikit-learn's default
  sklearn-cd        the same with coordinate descent (faster here than its default)

Held-out objective: the same independent solver for all (300 FISTA steps, exact step 1/‖D‖₂²) on 2,000
patches of the held-out regions drawn with another seed (1), at checkpoints of each learner's own clock;
evaluation is not counted. Clock: with one thread, the thread's CPU time (this machine is shared: CPU
time is what the learner spent, wall time also counts the others' load; both are recorded); with more
threads, wall time. Each learner takes turns to run to its next checkpoint, so all see the same load.

For each level scikit-learn reaches at 10, 30 and 90 s: the time each learner needs to reach it
(linear between checkpoints) and the ratio. Prints a table; writes bench/results/sparse_coding_speed.json.

    .venv/bin/python bench/sparse_coding_speed.py            # ~15 min on a quiet 2-core machine
    .venv/bin/python bench/sparse_coding_speed.py --quick    # ~1 min, a smaller problem
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from pinwheel import inference  # noqa: E402
from pinwheel.configs import RunConfig  # noqa: E402
from pinwheel.data import Dataset, natural  # noqa: E402
from pinwheel.models import build_model  # noqa: E402

OUT = Path(__file__).resolve().parent / "results" / "sparse_coding_speed.json"
CHECKPOINTS = (0.25, 0.5, 1, 2, 3, 5, 10, 20, 30, 60, 90)
LEVEL_TIMES = (10, 30, 90)  # scikit-learn's objective at these times defines the common levels


def heldout_objective(x: torch.Tensor, W: torch.Tensor, alpha: float, steps: int = 300) -> float:
    """Mean ½‖x − W z‖² + α‖z‖₁ over x (b, n), z by `steps` FISTA iterations at the exact step (same for all)."""
    W = W.detach().float()
    z = inference.fista(x, W, alpha, steps, L=inference.lipschitz(W))
    return float(inference.energy(x, W, z, alpha).mean())


class Pinwheel:
    def __init__(self, pool: np.ndarray, units: int, alpha: float, update: str, steps: int, lr: float, seed: int):
        cfg = RunConfig.model_validate({
            "model": {"kind": "group_sparse", "form": "sparse_coding", "units": units, "lam": alpha,
                      "inference_steps": steps, "groups": {"kind": "blocks_1d", "size": 1}, "dictionary_update": update},
            "data": {"kind": "natural_patches", "patch_size": 12}, "train": {"batch_size": 256, "lr": lr, "seed": seed}})
        self.data = Dataset(torch.from_numpy(pool.reshape(len(pool), -1)), None, (12, 12))
        self.generator = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)
        self.model = build_model(cfg.model, self.data, self.generator)
        self.optimizer = self.model.make_optimizer(lr)
        self.steps, self.batch = 0, cfg.train.batch_size

    def step(self) -> None:
        x, _ = self.data.batch(self.batch, self.generator)
        self.model.train_step(x, None, self.steps, self.optimizer)
        self.steps += 1

    def atoms(self) -> torch.Tensor:
        return self.model.W_d.detach()  # (n, m)


class ScikitLearn:
    def __init__(self, pool: np.ndarray, units: int, alpha: float, algorithm: str, seed: int):
        from sklearn.decomposition import MiniBatchDictionaryLearning

        self.pool = pool.reshape(len(pool), -1).astype(np.float64)
        self.rng = np.random.default_rng(seed)
        self.learner = MiniBatchDictionaryLearning(n_components=units, alpha=alpha, batch_size=256,
                                                   fit_algorithm=algorithm, random_state=seed)
        self.steps = 0

    def step(self) -> None:
        self.learner.partial_fit(self.pool[self.rng.integers(0, len(self.pool), 256)])
        self.steps += 1

    def atoms(self) -> torch.Tensor:
        return torch.from_numpy(self.learner.components_.T.astype(np.float32))  # rows → columns


def time_to_reach(curve: list[dict], level: float, clock: str) -> float | None:
    """First time the held-out objective is ≤ level, linear between checkpoints; None if never."""
    prev_t, prev_o = 0.0, None
    for point in curve:
        t, o = point[clock], point["objective"]
        if o <= level:
            if prev_o is None or prev_o <= o:
                return t
            return prev_t + (t - prev_t) * (prev_o - level) / (prev_o - o)
        prev_t, prev_o = t, o
    return None


def run(learners: dict, budgets: dict, held: torch.Tensor, alpha: float, checkpoints, clock: str) -> dict:
    """Round-robin: each learner runs to its next checkpoint (on its own clock), is evaluated, and yields."""
    curves = {name: [] for name in learners}
    spent = {name: {"cpu": 0.0, "wall": 0.0} for name in learners}
    pending = {name: [c for c in checkpoints if c <= budgets[name]] for name in learners}
    while any(pending.values()):
        for name, learner in learners.items():
            if not pending[name]:
                continue
            target = pending[name].pop(0)
            while spent[name][clock] < target:
                c0, w0 = time.thread_time(), time.perf_counter()
                learner.step()
                spent[name]["cpu"] += time.thread_time() - c0
                spent[name]["wall"] += time.perf_counter() - w0
            objective = heldout_objective(held, learner.atoms(), alpha)
            curves[name].append({"cpu": round(spent[name]["cpu"], 3), "wall": round(spent[name]["wall"], 3),
                                 "steps": learner.steps, "objective": round(objective, 4)})
            print(f"  {name:15s} {clock} {spent[name][clock]:7.2f} s  steps {learner.steps:6d}  "
                  f"held-out {objective:.4f}", flush=True)
    return curves


def compare(curves: dict, clock: str, level_times=LEVEL_TIMES, ours: str = "pinwheel-online") -> list[dict]:
    rows = []
    for peer in (n for n in curves if n.startswith("sklearn")):
        for at in level_times:
            point = next((p for p in curves[peer] if abs(p[clock] - at) < 0.5 * at and p[clock] >= at), None)
            if point is None:
                continue
            level = point["objective"]
            times = {name: time_to_reach(curve, level, clock) for name, curve in curves.items()}
            mine = times.get(ours)
            rows.append({"peer": peer, "peer_time_s": point[clock], "level": level, "time_to_level_s": times,
                         "ratio": round(times[peer] / mine, 2) if mine and times[peer] else None})
    return rows


def adam_stall(pool: np.ndarray, held: torch.Tensor, alpha: float, steps: int, report_at=(25, 100, 400, 1600)) -> dict:
    """Why Adam stalls: from the same start (patches as atoms, 10 FISTA steps), the per-step change of the
    atoms (mean over atoms of ‖Δd_k‖, atoms of norm 1) and the held-out objective, for Adam at two learning
    rates and for the online update. Counted in steps, not seconds."""
    out = {}
    for name, update, lr in (("adam lr 3e-3", "adam", 3e-3), ("adam lr 3e-4", "adam", 3e-4), ("online", "online", 0.0)):
        learner = Pinwheel(pool, 256, alpha, update, 10, lr or 1e-3, 0)
        if update == "adam":  # the online learner's start: m random patches of unit norm
            start = Pinwheel(pool, 256, alpha, "online", 10, 1e-3, 0).atoms()
            learner.model.W_d.data.copy_(start)
        rows = []
        for _ in range(steps):
            before = learner.atoms().clone()
            learner.step()
            if learner.steps in report_at or learner.steps == steps:
                change = float((learner.atoms() - before).norm(dim=0).mean())
                rows.append({"step": learner.steps, "mean_atom_change": round(change, 5),
                             "objective": round(heldout_objective(held, learner.atoms(), alpha), 4)})
                print(f"  {name:13s} step {learner.steps:5d}  ‖Δd‖ {change:.5f}  held-out {rows[-1]['objective']:.4f}",
                      flush=True)
        out[name] = rows
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a smaller problem and 6 s per learner (~1 min)")
    ap.add_argument("--threads", type=int, default=1, help="threads for torch and BLAS (both learners)")
    ap.add_argument("--alpha", type=float, default=1.0)
    ap.add_argument("--sklearn", default="lars,cd", help="scikit-learn fit algorithms to run")
    ap.add_argument("--budget", type=float, default=90.0, help="seconds for each scikit-learn learner")
    ap.add_argument("--ours-budget", type=float, default=30.0, help="seconds for each Pinwheel learner")
    ap.add_argument("--levels", default="10,30,90", help="scikit-learn's objective at these times sets the levels")
    ap.add_argument("--stall", type=int, default=0, metavar="STEPS",
                    help="instead: Adam (two learning rates) vs online, atom change per step and objective, STEPS steps")
    ap.add_argument("--online-steps", type=int, default=10, help="FISTA steps of pinwheel-online")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore", module="sklearn")  # cd's "did not converge" on every batch: its default tol
    clock = "cpu" if args.threads == 1 else "wall"
    pool_size, held_size, units = (10_000, 500, 256) if args.quick else (50_000, 2_000, 256)
    budget, ours_budget = (6.0, 3.0) if args.quick else (args.budget, args.ours_budget)
    checkpoints = (0.5, 1, 2, 3, 6) if args.quick else tuple(c for c in CHECKPOINTS if c <= max(budget, ours_budget))
    pool = natural.training_patches(12, pool_size, seed=0)
    held = torch.from_numpy(natural.heldout_patches(12, held_size, seed=1).reshape(held_size, -1))
    load_before = os.getloadavg()
    torch.set_num_threads(args.threads)
    if args.stall:
        with threadpool_limits(limits=args.threads):
            stall = adam_stall(pool, held, args.alpha, args.stall)
        report = json.loads(OUT.read_text()) if OUT.exists() else {}
        report["adam_stall"] = {"command": "bench/sparse_coding_speed.py " + " ".join(argv or sys.argv[1:]),
                                "load_average": [round(v, 2) for v in os.getloadavg()], "rows": stall}
        OUT.write_text(json.dumps(report, indent=1) + "\n")
        return 0
    with threadpool_limits(limits=args.threads):
        learners, budgets = {}, {}
        learners["pinwheel-online"] = Pinwheel(pool, units, args.alpha, "online", args.online_steps, 3e-3, 0)
        learners["pinwheel-adam"] = Pinwheel(pool, units, args.alpha, "adam", 30, 3e-3, 0)
        budgets.update({"pinwheel-online": ours_budget, "pinwheel-adam": ours_budget})
        for algo in filter(None, args.sklearn.split(",")):
            learners[f"sklearn-{algo}"] = ScikitLearn(pool, units, args.alpha, algo, 0)
            budgets[f"sklearn-{algo}"] = budget
        initial = {name: round(heldout_objective(held, lr.atoms(), args.alpha), 4) for name, lr in learners.items()
                   if name.startswith("pinwheel")}
        print(f"threads {args.threads}, clock {clock}, held-out ½‖x‖² = {0.5 * float(held.pow(2).sum(1).mean()):.2f}, "
              f"initial {initial}", flush=True)
        curves = run(learners, budgets, held, args.alpha, checkpoints, clock)
    rows = compare(curves, clock, (3, 6) if args.quick else tuple(float(t) for t in args.levels.split(",")))
    print(f"\nlevel reached by scikit-learn at T s → seconds ({clock}) for each learner to reach it; ratio = peer / "
          "pinwheel-online")
    for r in rows:
        times = "  ".join(f"{k} {'—' if v is None else f'{v:.2f}'}" for k, v in r["time_to_level_s"].items())
        print(f"  {r['peer']:12s} @ {r['peer_time_s']:6.2f} s: {r['level']:.4f}   {times}   ratio {r['ratio']}")
    import sklearn

    report = {
        "command": "bench/sparse_coding_speed.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "quick": args.quick, "threads": args.threads, "clock": clock, "alpha": args.alpha, "units": units,
        "patch": "whitened 12×12, training regions, pool seed 0", "pool_size": pool_size,
        "heldout": f"{held_size} patches of the held-out regions, seed 1; 300 FISTA steps, exact step",
        "objective": "mean over patches of ½‖x − D z‖² + α‖z‖₁, atoms ‖d_k‖ ≤ 1 (scikit-learn's, per sample)",
        "budgets_s": budgets, "initial_objective": initial, "curves": curves, "levels": rows,
        "load_average_before": [round(v, 2) for v in load_before],
        "load_average_after": [round(v, 2) for v in os.getloadavg()],
        "torch": torch.__version__, "sklearn": sklearn.__version__, "numpy": np.__version__,
        "cpu": next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                     if line.startswith("model name")), platform.processor()),
    }
    if not args.quick or not OUT.exists():
        OUT.parent.mkdir(parents=True, exist_ok=True)
        OUT.write_text(json.dumps(report, indent=1) + "\n")
        print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
