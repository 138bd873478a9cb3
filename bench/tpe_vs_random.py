"""Benchmark (not a test): how many trials does TPE (`method: bayes`) need to reach what random search finds?

Runs one continuous search space (bench/spaces/tpe_diffusion.yaml: lr over five decades and EMA decay of a
short DDPM run, fixed seed) through `python -m orchestration.sweep` as a user would, with `method: random`
and with `method: bayes`, 2 trials at a time, each with `--search-seed R` for R in 0 .. repeats-1.

For every repeat R: the target is random search's final best (over its whole trial budget); random needs
as many trials as the position of its best trial, TPE as many as the position of its first trial at least
as good as the target (in the order the searcher proposed them), or "not reached" within the budget.
The result is the median over repeats of each, and whether TPE needs at most half of random's.

    python bench/tpe_vs_random.py                 # 3 repeats x 2 methods x 20 trials, about 25 min on 2 cores
    python bench/tpe_vs_random.py --repeats 5
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import yaml
from common import ROOT, median, shown_path, sweep_once, sweep_store, write_result


def trials_in_order(workdir: Path, metric: str, keys: list[str]) -> list[dict]:
    """Each trial's values and final metric (None if it failed), in the order the trials started, which is
    the order the searcher proposed them (Tune's ids for a Searcher's trials carry no order; MLflow's
    start times do)."""
    from orchestration.tracking import TRIAL_TAG

    client, experiment = sweep_store(workdir)
    runs = client.search_runs([experiment.experiment_id], filter_string=f"tags.`{TRIAL_TAG}` != ''",
                              order_by=["attributes.start_time ASC"], max_results=10_000)
    out = []
    for run in runs:
        metrics = run.data.metrics if run.info.status == "FINISHED" else {}
        value = metrics.get(metric)
        out.append({**{k: float(run.data.params[k]) for k in keys},
                    metric: None if value is None or math.isnan(value) else value,
                    "ci": [metrics.get(f"{metric}_ci_low"), metrics.get(f"{metric}_ci_high")]})
    return out


def trials_to_reach(values: list[float | None], target: float, minimize: bool) -> int | None:
    """1-based position of the first value at least as good as target; None if none is."""
    for position, value in enumerate(values, start=1):
        if value is not None and (value <= target if minimize else value >= target):
            return position
    return None


def best_so_far(values: list[float | None], minimize: bool) -> list[float | None]:
    out, best = [], None
    for value in values:
        if value is not None and (best is None or (value < best if minimize else value > best)):
            best = value
        out.append(best)
    return out


def compare(random_values: list, tpe_values: list, minimize: bool) -> dict:
    pick = min if minimize else max
    target = pick(v for v in random_values if v is not None)
    return {"target": target, "random_trials": trials_to_reach(random_values, target, minimize),
            "tpe_trials": trials_to_reach(tpe_values, target, minimize),
            "random_best": target, "tpe_best": pick(v for v in tpe_values if v is not None),
            "random_best_so_far": best_so_far(random_values, minimize),
            "tpe_best_so_far": best_so_far(tpe_values, minimize)}


def search(raw: dict, method: str, repeat: int, workdir: Path, max_concurrent: int, metric: str) -> dict:
    """One sweep with `method` and --search-seed `repeat`, kept in workdir: a finished one is read back
    instead of run again, so an interrupted benchmark continues where it stopped."""
    name = f"{method}-{repeat}"
    space = workdir / f"{method}.yaml"
    space.parent.mkdir(parents=True, exist_ok=True)
    space.write_text(yaml.safe_dump({**raw, "method": method}, sort_keys=False))
    wall = sweep_once(space, workdir / name, name, "--search-seed", str(repeat), "--max-concurrent",
                      str(max_concurrent), allow_failed_trials=True)
    return {"wall_s": wall, "trials": trials_in_order(workdir / name, metric, swept(raw))}


def swept(raw: dict) -> list[str]:
    return [k for k, entry in raw["parameters"].items() if "value" not in entry]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default=str(ROOT / "bench" / "spaces" / "tpe_diffusion.yaml"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-concurrent", type=int, default=2)
    parser.add_argument("--workdir", default="/tmp/bench-tpe-vs-random",
                        help="sweeps kept here; finished ones are reused when the benchmark is run again")
    args = parser.parse_args()

    raw = yaml.safe_load(Path(args.space).read_text())
    minimize = raw["metric"]["goal"] == "minimize"
    metric = raw["metric"]["name"]
    repeats, workdir = [], Path(args.workdir)
    for repeat in range(args.repeats):
        runs = {}
        for method in ("random", "bayes"):
            runs[method] = search(raw, method, repeat, workdir, args.max_concurrent, metric)
        result = compare([t[metric] for t in runs["random"]["trials"]],
                         [t[metric] for t in runs["bayes"]["trials"]], minimize)
        random_best = next(t for t in runs["random"]["trials"] if t[metric] == result["target"])
        low, high = random_best["ci"]
        result["target_ci"] = random_best["ci"]
        result["tpe_best_inside_target_ci"] = low is not None and low <= result["tpe_best"] <= high
        repeats.append({"search_seed": repeat, **result, "random_wall_s": runs["random"]["wall_s"],
                        "tpe_wall_s": runs["bayes"]["wall_s"], "random": runs["random"]["trials"],
                        "tpe": runs["bayes"]["trials"]})
        print(f"repeat {repeat}: target {result['target']:.4g}; random needs {result['random_trials']}, "
              f"TPE {result['tpe_trials']} of {raw['num_samples']}", flush=True)

    budget = raw["num_samples"]
    # a TPE run that never reaches the target counts as budget + 1 trials: more than it had
    tpe_needed = [r["tpe_trials"] or budget + 1 for r in repeats]
    random_needed = [r["random_trials"] for r in repeats]
    write_result("tpe_vs_random", {
        "space": shown_path(args.space), "metric": metric,
        "mode": "min" if minimize else "max", "budget": budget, "max_concurrent": args.max_concurrent,
        "repeats": repeats,
        "median_random_trials": median(random_needed), "median_tpe_trials": median(tpe_needed),
        "tpe_reached": sum(r["tpe_trials"] is not None for r in repeats),
        "tpe_best_inside_target_ci": sum(r["tpe_best_inside_target_ci"] for r in repeats),
        "target_met": median(tpe_needed) <= median(random_needed) / 2})


if __name__ == "__main__":
    main()
