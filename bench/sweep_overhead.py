"""Benchmark (not a test): what Tune + MLflow cost per trial.

Runs the trials of a grid search space twice: (1) as a sweep, `python -m orchestration.sweep SPACE
--max-concurrent 1` with MLflow on SQLite (params, per-iteration metrics, artifacts, checkpoints
every iteration); (2) back to back in one plain Python process that builds each trial's Experiment and
does the same work (steps, evaluation, sample grids, final checkpoint) with no Ray and no MLflow.
Both run one trial at a time with one torch thread, and both wall times include interpreter start-up.

Overhead per trial = (sweep wall - back-to-back wall) / trials, also as a share of a back-to-back
trial, from the medians over --repeats pairs: this machine's wall times vary by about 5% from run to
run. The in-trial part (time Tune measured inside the trials vs the same work in one process)
separates what MLflow logging costs from what starting Ray, trial workers and checkpoints cost.

    python bench/sweep_overhead.py                     # bench/spaces/overhead.yaml: 3 default diffusion trials
    python bench/sweep_overhead.py --space search_spaces/rl.yaml
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, median, run_sweep, sweep_rows, write_result


def grid_configs(space: str) -> list[dict]:
    """The trial configs a grid sweep expands to, with the family's defaults filled in."""
    from orchestration.search_space import load_sweep

    spec = load_sweep(space)
    constants = {k: v["value"] for k, v in spec.parameters.items() if "value" in v}
    return [spec.family.resolve({**constants, **point}) for point in spec.grid_points()]


def back_to_back(space: str) -> list[dict]:
    """Each trial's work in this process, without Ray or MLflow: seconds per trial."""
    import torch

    from orchestration.search_space import load_sweep

    torch.set_num_threads(1)
    family = load_sweep(space).family
    times = []
    for config in grid_configs(space):
        start = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            experiment = family.build_experiment(config)
            experiment.describe()
            experiment.write_artifacts(Path(tmp), final=False)
            for _ in range(int(config[family.budget_param])):
                experiment.step()
            experiment.write_artifacts(Path(tmp), final=True)
            experiment.save(Path(tmp))
            getattr(experiment, "close", lambda: None)()
        times.append({"total_s": time.perf_counter() - start})
        print(f"  trial {len(times)}: {times[-1]}", flush=True, file=sys.stderr)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default=str(ROOT / "bench" / "spaces" / "overhead.yaml"))
    parser.add_argument("--repeats", type=int, default=2, help="sweep / back-to-back pairs; medians are reported")
    parser.add_argument("--in-process", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.in_process:  # the child process of part (2)
        print(json.dumps(back_to_back(args.space)))
        return

    pairs = [measure_pair(args.space, repeat) for repeat in range(args.repeats)]
    n = pairs[0]["trials"]
    sweep_wall, plain_wall = (median([p[key] for p in pairs]) for key in ("sweep_wall_s", "back_to_back_wall_s"))
    in_trial, in_process = (median([p[key] for p in pairs]) for key in ("in_trial_s", "in_process_trial_s"))
    per_trial = (sweep_wall - plain_wall) / n
    write_result("sweep_overhead", {
        "space": str(Path(args.space).resolve().relative_to(ROOT)), "trials": n, "repeats": args.repeats,
        "sweep_wall_s": round(sweep_wall, 1), "back_to_back_wall_s": round(plain_wall, 1),
        "overhead_per_trial_s": round(per_trial, 2),
        "overhead_per_trial_pct": round(100 * per_trial / (plain_wall / n), 1),
        "in_trial_s": round(in_trial, 1), "in_process_trial_s": round(in_process, 1),
        "in_trial_overhead_pct": round(100 * (in_trial / in_process - 1), 1),
        "trials_finished": min(p["trials_finished"] for p in pairs), "pairs": pairs})


def measure_pair(space: str, repeat: int) -> dict:
    """One sweep and one back-to-back run, in alternating order from repeat to repeat so that a slow
    spell of the machine does not always land on the same side."""
    sides = [measure_sweep, measure_back_to_back]
    result = {}
    for measure in sides if repeat % 2 == 0 else sides[::-1]:
        result.update(measure(space))
        print(f"repeat {repeat} {measure.__name__}: {result}", flush=True)
    return result


def measure_sweep(space: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-overhead-") as tmp:
        wall, experiment_dir = run_sweep(space, Path(tmp), "overhead", "--max-concurrent", "1", "--num-cpus", "2")
        _, rows = sweep_rows(space, experiment_dir)
    # Tune's time_total_s: a trial's step() calls, which include building its Experiment, MLflow logging
    # and its final artifacts (SweepTrainable starts a trial in its first step and ends it in its last)
    return {"sweep_wall_s": round(wall, 1), "in_trial_s": round(sum(r.wall_s for r in rows), 1),
            "trials_finished": sum(r.outcome == "finished" for r in rows)}


def measure_back_to_back(space: str) -> dict:
    start = time.perf_counter()
    child = subprocess.run([sys.executable, __file__, "--space", space, "--in-process"], cwd=ROOT, check=True,
                           capture_output=True, text=True)
    trials = json.loads(child.stdout.strip().splitlines()[-1])
    return {"back_to_back_wall_s": round(time.perf_counter() - start, 1), "trials": len(trials),
            "in_process_trial_s": round(sum(t["total_s"] for t in trials), 1)}

if __name__ == "__main__":
    main()
