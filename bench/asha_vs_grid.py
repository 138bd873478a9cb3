"""Benchmark (not a test): does ASHA find the grid's best configuration, and how much cheaper?

Runs one grid search space twice through `python -m orchestration.sweep` (2 trials at a time, MLflow
on SQLite): as written, where every trial runs its whole budget, and with an ASHA scheduler added
(rungs at grace_period * reduction_factor^k iterations). Seeds are fixed and training on the CPU is
deterministic, so a trial ASHA lets finish ends exactly where the same trial ends in the grid.

Cost is counted three ways: trial iterations run, seconds spent inside trials (Tune's time_total_s),
and the sweep's wall time. The saving is grid / ASHA for each.

    python bench/asha_vs_grid.py                       # bench/spaces/lr_grid.yaml, 12 trials
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import yaml
from common import ROOT, run_sweep, sweep_rows, write_result


def summarize(space: Path, experiment_dir: Path, wall: float) -> dict:
    spec, rows = sweep_rows(space, experiment_dir)
    best = rows[0]  # sorted best first
    return {"wall_s": round(wall, 1), "trial_iterations": sum(r.iterations for r in rows),
            "trial_seconds": round(sum(r.wall_s for r in rows), 1), "trials": len(rows),
            "finished_trials": sum(r.outcome == "finished" for r in rows),
            "best_config": best.config, "best_metric": round(best.final, 3),
            "table": [{**r.config, spec.metric: round(r.final, 3) if r.final is not None else None,
                       "iterations": r.iterations} for r in rows]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default=str(ROOT / "bench" / "spaces" / "lr_grid.yaml"))
    parser.add_argument("--grace-period", type=int, default=1)
    parser.add_argument("--reduction-factor", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-asha-") as tmp:
        tmp = Path(tmp)
        raw = yaml.safe_load(Path(args.space).read_text())
        raw["scheduler"] = {"type": "asha", "grace_period": args.grace_period,
                            "reduction_factor": args.reduction_factor}
        asha_space = tmp / "asha.yaml"
        asha_space.write_text(yaml.safe_dump(raw, sort_keys=False))

        results = {}
        for label, space in (("grid", Path(args.space)), ("asha", asha_space)):
            wall, experiment_dir = run_sweep(space, tmp / label, label)
            results[label] = summarize(space, experiment_dir, wall)
            print(label, {k: v for k, v in results[label].items() if k != "table"}, flush=True)

    grid, asha = results["grid"], results["asha"]
    write_result("asha_vs_grid", {
        "space": str(Path(args.space).resolve().relative_to(ROOT)),
        "asha": {"grace_period": args.grace_period, "reduction_factor": args.reduction_factor},
        "grid": grid, "asha_run": asha,
        "same_best_config": grid["best_config"] == asha["best_config"],
        "saving_iterations": round(grid["trial_iterations"] / asha["trial_iterations"], 2),
        "saving_trial_seconds": round(grid["trial_seconds"] / asha["trial_seconds"], 2),
        "saving_wall": round(grid["wall_s"] / asha["wall_s"], 2)})


if __name__ == "__main__":
    main()
