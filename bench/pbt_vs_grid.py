"""Benchmark (not a test): population-based training against the best fixed configuration of a grid, at equal
total training compute.

PBT side: `search_spaces/pbt_rl.yaml` as users run it (8 A2C trials on CartPole, lr and entropy_coeff mutated
every 2 iterations), repeated R times with `--search-seed r --set seed=r`; each repeat's answer is its best
trial's final score. Grid side: the same ranges as a grid of as many fixed configurations as the population
(the centres of equal log-width cells: 4 learning rates x 2 entropy coefficients), the same budget per trial,
`--seeds R` (seeds 0 .. R-1). Both sides train R x 8 trials x `iterations`.

Reported, with the intervals the sweeps report (Student's t over seeds, `orchestration.aggregate`):
- the grid's answer: its best configuration by mean over seeds, with its 95% CI;
- PBT: the mean of its repeats' best scores, with its 95% CI;
- like for like, per seed r: PBT's best trial against the best fixed configuration of grid seed r (both the
  best of 8 trials), as the paired 95% t interval of the difference.
Target: PBT at least as good as the grid's best configuration.

    python bench/pbt_vs_grid.py                 # 3 repeats, about 15 min on 2 cores
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import yaml
from common import ROOT, shown_path, sweep_once, sweep_store, write_result

GRID_POINTS = {"lr": 4, "entropy_coeff": 2}  # 8 configurations, the population's size


def log_cell_centres(low: float, high: float, n: int) -> list[float]:
    return [float(f"{low * (high / low) ** ((i + 0.5) / n):.3g}") for i in range(n)]


def grid_space(pbt: dict, repeats: int) -> dict:
    """The PBT space's ranges as a grid of fixed configurations, replicated over seeds."""
    parameters = dict(pbt["parameters"])
    for key, n in GRID_POINTS.items():
        entry = parameters[key]
        parameters[key] = {"values": log_cell_centres(entry["min"], entry["max"], n)}
    raw = {k: v for k, v in pbt.items() if k not in ("scheduler", "num_samples")}
    return {**raw, "description": "The PBT space's ranges as a grid", "method": "grid", "seeds": repeats,
            "parameters": parameters}


def results_of(workdir: Path):
    from orchestration.results import load_results
    from orchestration.results.rows import find_parent

    client, experiment = sweep_store(workdir)
    found, parent = find_parent(client, experiment.name)
    return load_results(client, found.experiment_id, parent)


def interval_dict(values: list[float]) -> dict:
    from orchestration.aggregate import t_interval

    ci = t_interval(values)
    return {"values": values, "mean": float(np.mean(values)), "ci": [ci.low, ci.high] if ci else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default=str(ROOT / "search_spaces" / "pbt_rl.yaml"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workdir", default="/tmp/bench-pbt-vs-grid",
                        help="sweeps kept here; finished ones are reused when the benchmark is run again")
    args = parser.parse_args()

    from orchestration.aggregate import paired_difference

    pbt = yaml.safe_load(Path(args.space).read_text())
    population, iterations = pbt["num_samples"], pbt["parameters"]["iterations"]["value"]
    assert np.prod(list(GRID_POINTS.values())) == population, "equal compute needs a grid as large as the population"
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    grid_file = workdir / "grid.yaml"
    grid_file.write_text(yaml.safe_dump(grid_space(pbt, args.repeats), sort_keys=False))
    grid_wall = sweep_once(grid_file, workdir / "grid", "grid")
    grid = results_of(workdir / "grid")
    pbt_best, pbt_walls, pbt_runs = {}, [], []
    for repeat in range(args.repeats):
        wall = sweep_once(Path(args.space), workdir / f"pbt-{repeat}", f"pbt-{repeat}", "--search-seed", str(repeat),
                          "--set", f"seed={repeat}")
        rows = [r for r in results_of(workdir / f"pbt-{repeat}").rows if r.scored]
        best = max(rows, key=lambda r: r.final)
        pbt_best[repeat] = best.final
        pbt_walls.append(round(wall, 1))
        pbt_runs.append({"repeat": repeat, "best_trial": best.name, "best": best.final,
                         "ended_at": best.final_hyperparameters, "population": sorted(r.final for r in rows)})
        print(f"PBT repeat {repeat}: best {best.final:.4g} ({best.name})", flush=True)

    best_config = grid.best
    per_seed_best = {seed: max(c.scores[seed] for c in grid.configs if seed in c.scores)
                     for seed in range(args.repeats)}
    difference = paired_difference(pbt_best, per_seed_best)
    pbt_summary = interval_dict([pbt_best[r] for r in range(args.repeats)])
    write_result("pbt_vs_grid", {
        "space": shown_path(args.space), "metric": grid.view.metric,
        "repeats": args.repeats, "population": population, "iterations": iterations,
        "trial_iterations_each": args.repeats * population * iterations,
        "grid": {"wall_s": round(grid_wall, 1), "values": {k: v["values"] for k, v in
                                                            grid_space(pbt, args.repeats)["parameters"].items()
                                                            if k in GRID_POINTS},
                 "best_config": best_config.label(),
                 "best": interval_dict([best_config.scores[seed] for seed in sorted(best_config.scores)]),
                 "configs": [{"config": c.label(), "scores": c.scores, "mean": c.mean} for c in grid.configs],
                 "best_of_population_per_seed": per_seed_best},
        "pbt": {"wall_s": pbt_walls, "best_per_repeat": pbt_summary, "runs": pbt_runs},
        "paired_difference_vs_best_of_grid_seed": [difference.low, difference.high] if difference else None,
        "target_met": pbt_summary["mean"] >= best_config.mean})


if __name__ == "__main__":
    main()
