"""Training steps per second of every preset, before and after issue 17's host-sync removal, side by side.

"before" is the `pinwheel` package of a git commit (default d5a92aa, the tree issue 17 started from),
extracted to a temporary folder; "after" is this checkout's. For each preset two child processes
build it, one on each package (bench/step_check.py: batch draw + model.train_step as pinwheel.train
takes them, small data pools — the step does not depend on the pool's size, CPU, --threads torch
threads), and then take turns: short slices of training (--slice seconds) in the order
before, after, after, before, … until each has trained --seconds. The load of this shared machine
(2 cores, other agents' tests) changes over seconds; fine turns make it fall on both alike. Rates
are steps per wall second and per CPU second of the process (with one thread the latter hardly
depends on the load).
    PYTHONPATH=. python bench/preset_steps.py [--seconds 6] [--slice 0.25] [--threads 1] [--commit d5a92aa]
Writes bench/results/preset_steps.json.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "results" / "preset_steps.json"
BEFORE = "d5a92aa04c7098b1768457dd77f8926bfaeaabc8"


def child(root: str, preset_id: str, threads: int) -> None:
    """Build the preset on `root`'s pinwheel; then for every line "<seconds>" on stdin train that long and
    print {"steps", "wall", "cpu"}."""
    sys.path.insert(0, root)  # this root's pinwheel; bench.step_check from the checkout
    import torch  # noqa: PLC0415

    torch.set_num_threads(threads)
    import pinwheel  # noqa: PLC0415
    from pinwheel.configs import preset_by_id  # noqa: PLC0415

    from bench.step_check import build, preset_config, run_steps  # noqa: PLC0415

    assert Path(pinwheel.__file__).resolve().is_relative_to(Path(root).resolve()), pinwheel.__file__
    cfg, note = preset_config(preset_by_id(preset_id))
    model, dataset, optimizer, generator = build(cfg, "cpu")
    bs, step = cfg.train.batch_size, 3
    run_steps(model, dataset, optimizer, generator, 3, bs)  # warm-up
    print(json.dumps({"ready": True, "note": note}), flush=True)
    for line in sys.stdin:
        budget, n = float(line), 0
        w0, c0 = time.perf_counter(), time.process_time()
        while time.perf_counter() - w0 < budget:
            run_steps(model, dataset, optimizer, generator, 1, bs, step)
            n, step = n + 1, step + 1
        print(json.dumps({"steps": n, "wall": time.perf_counter() - w0, "cpu": time.process_time() - c0}), flush=True)


def compare(roots: dict, preset_id: str, seconds: float, slice_s: float, threads: int) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS=str(threads))
    procs = {v: subprocess.Popen([sys.executable, __file__, "--child", str(root), preset_id, str(threads)], cwd=ROOT,
                                 env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for v, root in roots.items()}
    totals = {v: {"steps": 0, "wall": 0.0, "cpu": 0.0} for v in roots}
    try:
        notes = {}
        for v, p in procs.items():
            line = p.stdout.readline()
            if not line:
                return {"error": f"{v}: " + (p.stderr.read().strip().splitlines() or ["no output"])[-1]}
            notes[v] = json.loads(line).get("note", "")
        turns = max(2, round(seconds / slice_s))
        for k in range(turns):
            for v in (("before", "after") if k % 2 == 0 else ("after", "before")):
                procs[v].stdin.write(f"{slice_s}\n")
                procs[v].stdin.flush()
                got = json.loads(procs[v].stdout.readline())
                for key in totals[v]:
                    totals[v][key] += got[key]
    finally:
        for p in procs.values():
            p.kill()
            p.wait()
    out = {"note": notes.get("after", "")}
    for v, t in totals.items():
        out[v] = {"steps": t["steps"], "steps_per_wall_s": round(t["steps"] / t["wall"], 2),
                  "steps_per_cpu_s": round(t["steps"] / max(t["cpu"], 1e-9), 2)}
    out["ratio_wall"] = round(out["after"]["steps_per_wall_s"] / out["before"]["steps_per_wall_s"], 3)
    out["ratio_cpu"] = round(out["after"]["steps_per_cpu_s"] / out["before"]["steps_per_cpu_s"], 3)
    return out


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=6.0, help="training time per preset and version")
    ap.add_argument("--slice", type=float, default=0.25, help="seconds per turn")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per process (2 shared cores here)")
    ap.add_argument("--commit", default=BEFORE)
    ap.add_argument("--only", nargs="*", help="preset ids (default: every preset)")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    from pinwheel.configs import PRESETS  # noqa: PLC0415

    ids = args.only or [p["id"] for p in PRESETS]
    rows = []
    with tempfile.TemporaryDirectory(prefix="pinwheel-before-") as tmp:
        archive = subprocess.run(["git", "archive", args.commit, "pinwheel"], cwd=ROOT, capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", tmp], input=archive.stdout, check=True)
        roots = {"before": Path(tmp), "after": ROOT}
        print(f"{'preset':22} {'before':>9} {'after':>9} {'ratio':>7}   {'before':>9} {'after':>9} {'ratio':>7}\n"
              f"{'':22} {'steps per wall second':^27}   {'steps per CPU second':^27}", flush=True)
        for preset_id in ids:
            r = {"preset": preset_id, **compare(roots, preset_id, args.seconds, args.slice, args.threads)}
            rows.append(r)
            if "error" in r:
                print(f"{preset_id:22} ERROR {r['error']}", flush=True)
                continue
            b, a = r["before"], r["after"]
            print(f"{preset_id:22} {b['steps_per_wall_s']:9.2f} {a['steps_per_wall_s']:9.2f} {r['ratio_wall']:7.2f}   "
                  f"{b['steps_per_cpu_s']:9.2f} {a['steps_per_cpu_s']:9.2f} {r['ratio_cpu']:7.2f}   {r['note']}", flush=True)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"before_commit": args.commit, "after": "working tree", "threads": args.threads,
                               "seconds_each": args.seconds, "slice_s": args.slice, "load_average": os.getloadavg(),
                               "presets": rows}, indent=2))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
