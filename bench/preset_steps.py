"""Training steps per second of every preset, before and after issue 17's host-sync removal, side by side.

"before" is the `pinwheel` package of a git commit (default d5a92aa, the tree issue 17 started from),
extracted to a temporary folder; "after" is this checkout's. Each measurement is a child process
that imports one of the two (bench/step_check.py's loop: batch draw + model.train_step, as
pinwheel.train takes them, with small data pools — the step does not depend on the pool's size),
warms up, then times about --seconds of steps on the CPU. Rounds alternate the order (before,
after / after, before) preset by preset so the load of this shared machine falls on both alike;
the table shows medians and the median per-round ratio.
    PYTHONPATH=. python bench/preset_steps.py [--seconds 4] [--rounds 3] [--threads 1] [--commit d5a92aa]
Writes bench/results/preset_steps.json.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "results" / "preset_steps.json"
BEFORE = "d5a92aa04c7098b1768457dd77f8926bfaeaabc8"


def child(root: str, preset_id: str, seconds: float, threads: int) -> None:
    sys.path.insert(0, root)  # this root's pinwheel; bench.step_check from the checkout
    import torch  # noqa: PLC0415

    torch.set_num_threads(threads)
    import pinwheel  # noqa: PLC0415
    from pinwheel.configs import preset_by_id  # noqa: PLC0415

    from bench.step_check import build, preset_config, steps_per_second  # noqa: PLC0415

    assert Path(pinwheel.__file__).resolve().is_relative_to(Path(root).resolve()), pinwheel.__file__
    cfg, note = preset_config(preset_by_id(preset_id))
    model, dataset, optimizer, generator = build(cfg, "cpu")
    rate, n = steps_per_second(model, dataset, optimizer, generator, cfg.train.batch_size, seconds, warmup=3)
    print(json.dumps({"steps_per_s": rate, "steps": n, "note": note}))


def measure(root: Path, preset_id: str, seconds: float, threads: int) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS=str(threads))
    done = subprocess.run([sys.executable, __file__, "--child", str(root), preset_id, str(seconds), str(threads)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    if done.returncode:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], float(sys.argv[4]), int(sys.argv[5]))
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="torch threads per measurement (2 shared cores here)")
    ap.add_argument("--commit", default=BEFORE)
    ap.add_argument("--only", nargs="*", help="preset ids (default: every preset)")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    from pinwheel.configs import PRESETS  # noqa: PLC0415

    ids = args.only or [p["id"] for p in PRESETS]
    with tempfile.TemporaryDirectory(prefix="pinwheel-before-") as tmp:
        archive = subprocess.run(["git", "archive", args.commit, "pinwheel"], cwd=ROOT, capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", tmp], input=archive.stdout, check=True)
        roots = {"before": Path(tmp), "after": ROOT}
        runs: dict[str, dict[str, list]] = {i: {"before": [], "after": []} for i in ids}
        for r in range(args.rounds):
            for k, preset_id in enumerate(ids):
                order = ("before", "after") if (r + k) % 2 == 0 else ("after", "before")
                for version in order:
                    runs[preset_id][version].append(measure(roots[version], preset_id, args.seconds, args.threads))
                b, a = runs[preset_id]["before"][-1], runs[preset_id]["after"][-1]
                print(f"round {r + 1} {preset_id:22} before {b.get('steps_per_s', float('nan')):8.2f}  "
                      f"after {a.get('steps_per_s', float('nan')):8.2f} steps/s {b.get('error', '')}{a.get('error', '')}",
                      flush=True)
    rows = []
    for preset_id in ids:
        before, after = runs[preset_id]["before"], runs[preset_id]["after"]
        ok = [(b["steps_per_s"], a["steps_per_s"]) for b, a in zip(before, after) if "error" not in b and "error" not in a]
        row = {"preset": preset_id, "note": next((m.get("note") for m in after if m.get("note")), ""),
               "errors": [m["error"] for m in before + after if "error" in m]}
        if ok:
            row.update({"before_steps_per_s": round(statistics.median(b for b, _ in ok), 2),
                        "after_steps_per_s": round(statistics.median(a for _, a in ok), 2),
                        "ratio_after_over_before": round(statistics.median(a / b for b, a in ok), 3),
                        "ratios": [round(a / b, 3) for b, a in ok]})
        rows.append(row)
    print(f"\n{'preset':22} {'before':>9} {'after':>9} {'after/before':>13}   (steps/s, CPU, {args.threads} thread(s), "
          f"median of {args.rounds} rounds)")
    for row in rows:
        if "after_steps_per_s" in row:
            print(f"{row['preset']:22} {row['before_steps_per_s']:9.2f} {row['after_steps_per_s']:9.2f} "
                  f"{row['ratio_after_over_before']:13.3f}   {row['note']}")
        else:
            print(f"{row['preset']:22} ERROR {row['errors'][:1]}")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"before_commit": args.commit, "threads": args.threads, "seconds": args.seconds,
                               "rounds": args.rounds, "load_average": os.getloadavg(), "presets": rows,
                               "measurements": runs}, indent=2))


if __name__ == "__main__":
    main()
