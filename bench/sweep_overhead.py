"""Benchmark (not a test): what Tune + MLflow cost per trial, by family and by cause.

Runs the trials of a family's grid space twice: (1) as a sweep, `python -m orchestration.sweep SPACE
--max-concurrent 1` with MLflow on a new SQLite file (params, per-iteration metrics, system metrics,
artifacts, checkpoints every iteration, the model, the registry); (2) back to back in one plain Python
process that builds each trial's Experiment and does the same work (steps, evaluation, sample grids,
final checkpoint) with no Tune and no MLflow. Both run one trial at a time with one torch thread and one
BLAS thread (what Ray gives a 1-CPU trial), and both wall times include interpreter start-up. RL needs Ray
either way (RLlib runs on it), so its back-to-back side starts Ray too.

Overhead per trial = (sweep wall - back-to-back wall) / trials, also as a share of a back-to-back trial,
from the medians over --repeats pairs run in alternating order (this machine's wall times drift by a few
per cent). The breakdown reads the clocks the sweep keeps (`orchestration/overhead.py`): the driver's
phases (checks, Ray's start, MLflow's parent run, Tune, the results, the exit) and each trial's seconds
in MLflow calls, artifact uploads, model logging and checkpoints. What no clock sees (the background
system-metrics sampler, a slower step) is the in-trial rest. Each trial is also set beside its plain twin:
a worker's first trial pays MLflow's own imports, the later ones (Tune reuses the worker) only their calls,
and the rest of the difference is paid once per sweep.

`--ablate` switches parts off one at a time (the system metrics; checkpoints but the last) in sweeps of tiny
trials (TINY: the same iterations, evaluations and MLflow calls, almost no training), beside the same tiny
trials back to back, so that savings of a second are not lost in the drift of minutes of training.

    python bench/sweep_overhead.py                          # every family, 3 pairs each
    python bench/sweep_overhead.py --family rl --repeats 3  # one family; the others' results are kept
    python bench/sweep_overhead.py --ablate                 # then the ablation, beside the recorded pairs
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, earlier_blocks, median, provenance, run_sweep, write_result

SPACES = {"diffusion": "bench/spaces/overhead.yaml", "contrastive": "bench/spaces/overhead_contrastive.yaml",
          "rl": "bench/spaces/overhead_rl.yaml"}
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
# paid once per sweep (the rest is paid by every trial)
PER_SWEEP = ("checks", "ray", "mlflow", "trial_actors", "results", "exit")


def grid_configs(space: str, overrides: dict | None = None) -> list[dict]:
    """The trial configs a grid sweep expands to (with `overrides`, as `--set` gives them), with the
    family's defaults filled in."""
    from orchestration.search_space import load_sweep

    spec = load_sweep(space)
    if overrides:
        spec = spec.with_overrides(overrides)
    constants = {k: v["value"] for k, v in spec.parameters.items() if "value" in v}
    return [spec.family.resolve({**constants, **point}) for point in spec.grid_points()]


@functools.cache
def swept_keys(space: str) -> tuple[str, ...]:
    from orchestration.search_space import load_sweep

    return tuple(load_sweep(space).swept_keys)


def swept(space: str, config: dict) -> dict:
    """The grid's own keys of a trial config: what pairs a sweep's trial with its plain twin."""
    return {k: config[k] for k in swept_keys(space)}


def back_to_back(space: str, overrides: dict | None = None) -> list[dict]:
    """Each trial's work in this process, without Tune or MLflow: seconds per trial."""
    import torch

    from orchestration.search_space import load_sweep

    torch.set_num_threads(1)
    family = load_sweep(space).family
    times = []
    for config in grid_configs(space, overrides):
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
        times.append({"total_s": time.perf_counter() - start, "config": swept(space, config)})
        print(f"  trial {len(times)}: {times[-1]}", flush=True, file=sys.stderr)
    return times


def measure_sweep(space: str, *extra: str) -> dict:
    """One sweep: its wall time, the driver's phases and the trials' clocks (summed over trials)."""
    from ray.tune import ExperimentAnalysis

    from orchestration.overhead import PREFIX
    from orchestration.sweep import TIMELINE_FILE

    with tempfile.TemporaryDirectory(prefix="bench-overhead-") as tmp:
        wall, experiment_dir = run_sweep(space, Path(tmp), "overhead", "--max-concurrent", "1", "--num-cpus", "2",
                                         *extra)
        phases = json.loads((experiment_dir / TIMELINE_FILE).read_text())
        trials = sorted(ExperimentAnalysis(str(experiment_dir)).trials, key=lambda t: t.trial_id)  # in start order
        results = [(t.last_result or {}, t.config) for t in trials]
    per_trial = []
    for result, config in results:
        iterations = int(result.get("training_iteration", 0))
        own = {}
        for key, value in result.items():
            if key.startswith(PREFIX):
                cause = key[len(PREFIX):].removesuffix("_s")
                if cause == "checkpoints" and iterations > 1:
                    # the last result is reported before its own checkpoint: count that one at the mean
                    value = value * iterations / (iterations - 1)
                own[cause] = value
        per_trial.append({"config": swept(space, config), "total_s": round(float(result.get("time_total_s", 0.0)), 2),
                          "clocks": {k: round(v, 3) for k, v in own.items()}})
    clocks: dict[str, float] = {}  # summed over the trials
    for trial in per_trial:
        for cause, value in trial["clocks"].items():
            clocks[cause] = clocks.get(cause, 0.0) + value
    return {"sweep_wall_s": round(wall, 2), "phases": phases,
            "trial_clocks": {k: round(v, 3) for k, v in clocks.items()},
            "in_trial_s": round(sum(t["total_s"] for t in per_trial), 2), "sweep_trials": per_trial,
            "trials_finished": sum(bool(r.get("done")) for r, _ in results)}


def measure_back_to_back(space: str, overrides: dict | None = None) -> dict:
    start = time.perf_counter()
    child = subprocess.run([sys.executable, __file__, "--space", space, "--in-process",
                            "--overrides", json.dumps(overrides or {})], cwd=ROOT, check=True,
                           capture_output=True, text=True, env={**os.environ, **ONE_THREAD})
    trials = json.loads(child.stdout.strip().splitlines()[-1])
    return {"back_to_back_wall_s": round(time.perf_counter() - start, 2), "trials": len(trials),
            "in_process_trial_s": round(sum(t["total_s"] for t in trials), 2),
            "back_to_back_trials": [{**t, "total_s": round(t["total_s"], 2)} for t in trials]}


def measure_pair(space: str, repeat: int, *sweep_args: str) -> dict:
    """One sweep and one back-to-back run, in alternating order from repeat to repeat so that a slow
    spell of the machine does not always land on the same side."""
    sides = [lambda: measure_sweep(space, *sweep_args), lambda: measure_back_to_back(space)]
    result = {}
    for measure in sides if repeat % 2 == 0 else sides[::-1]:
        result.update(measure())
    print(f"repeat {repeat}: {json.dumps(result)}", flush=True)
    return result


def breakdown(pair: dict) -> dict[str, float]:
    """Seconds of one pair's overhead by cause; they add up to sweep wall - back-to-back wall."""
    phases, clocks = pair["phases"], pair["trial_clocks"]
    start_up = pair["back_to_back_wall_s"] - pair["in_process_trial_s"]  # the plain process's own start and exit
    traced = {"tracking": clocks.get("tracking", 0.0) + clocks.get("artifacts", 0.0),
              "model": clocks.get("model", 0.0), "checkpoints": clocks.get("checkpoints", 0.0)}
    parts = {
        "checks": phases["checks"] - start_up,  # interpreter, imports and checks, beyond what the plain process pays
        "ray": phases["ray"], "mlflow": phases["mlflow"],
        # Tune's own time: scheduling, the trial worker's start and imports, saving results; checkpoints
        # are outside a trial's time_total_s and counted on their own
        "trial_actors": phases["tune"] - pair["in_trial_s"] - traced["checkpoints"],
        "tracking": traced["tracking"], "model": traced["model"], "checkpoints": traced["checkpoints"],
        # the trials' steps in the sweep vs in the plain process, less the clocked MLflow calls inside them
        "in_trial_rest": (pair["in_trial_s"] - pair["in_process_trial_s"] - traced["tracking"] - traced["model"]),
        "results": phases["results"],
        "exit": pair["sweep_wall_s"] - sum(phases.values()),  # Ray's shutdown and the process's exit
    }
    return {k: round(v, 2) for k, v in parts.items()}


def trial_costs(pair: dict) -> list[dict]:
    """Each sweep trial's cost beside its plain twin (same configuration), in start order: the seconds it took
    longer, checkpoints included (they are outside Tune's time_total_s), and what its clocks saw."""
    plain = {json.dumps(t["config"], sort_keys=True): t["total_s"] for t in pair["back_to_back_trials"]}
    rows = []
    for trial in pair["sweep_trials"]:
        twin = plain[json.dumps(trial["config"], sort_keys=True)]
        rows.append({"plain_s": twin, "cost_s": trial["total_s"] + trial["clocks"].get("checkpoints", 0.0) - twin,
                     "clocked_s": sum(trial["clocks"].values())})
    return rows


def by_trial(pairs: list[dict]) -> dict:
    """The overhead split by where a trial stands: a worker's first trial pays MLflow's own imports and first
    model; every later trial in the same worker (Tune's reuse_actors) pays only its own calls. What is
    left of the sweep's wall time is paid once per sweep."""
    rows = [trial_costs(p) for p in pairs]
    later = [[100 * t["cost_s"] / t["plain_s"] for t in r[1:]] for r in rows]
    later_clocked = [[100 * t["clocked_s"] / t["plain_s"] for t in r[1:]] for r in rows]
    fixed = [p["sweep_wall_s"] - p["back_to_back_wall_s"] - sum(t["cost_s"] for t in r) for p, r in zip(pairs, rows)]
    return {"first_trial_s": round(median([r[0]["cost_s"] for r in rows]), 2),
            "first_trial_clocked_s": round(median([r[0]["clocked_s"] for r in rows]), 2),
            "later_trial_pct": round(median([x for pair in later for x in pair]), 1),
            "later_trial_pct_per_pair": [round(median(x), 1) for x in later],
            "later_trial_clocked_pct": round(median([x for pair in later_clocked for x in pair]), 1),
            "later_trial_clocked_pct_per_pair": [round(median(x), 1) for x in later_clocked],
            "fixed_per_sweep_s": round(median(fixed), 1), "fixed_per_sweep_s_per_pair": [round(x, 1) for x in fixed]}


def summarise(family: str, space: str, pairs: list[dict], ablation: dict | None) -> dict:
    from orchestration.search_space import load_sweep

    n = pairs[0]["trials"]
    sweep_wall, plain_wall = (median([p[k] for p in pairs]) for k in ("sweep_wall_s", "back_to_back_wall_s"))
    plain_trial = plain_wall / n
    per_pair = [100 * (p["sweep_wall_s"] - p["back_to_back_wall_s"]) / p["back_to_back_wall_s"] for p in pairs]
    parts = [breakdown(p) for p in pairs]
    causes = {cause: median([part[cause] for part in parts]) for cause in parts[0]}
    once = sum(v for k, v in causes.items() if k in PER_SWEEP)
    every = sum(v for k, v in causes.items() if k not in PER_SWEEP)
    # what the clocks saw, without the unclocked difference in the trials' own steps (which can be either sign)
    clocked = [sum(v for k, v in part.items() if k != "in_trial_rest") for part in parts]
    clocked_pct = [100 * c / p["back_to_back_wall_s"] for c, p in zip(clocked, pairs)]
    default = load_sweep(str(ROOT / "search_spaces" / f"{family}.yaml"))
    default_trials = len(default.configurations()) * (default.race["first_seeds"] if default.race
                                                      else default.seeds or 1)
    return {
        "space": space, "trials": n, "repeats": len(pairs),
        "sweep_wall_s": round(sweep_wall, 1), "back_to_back_wall_s": round(plain_wall, 1),
        "back_to_back_trial_s": round(plain_trial, 1),
        "overhead_per_trial_s": round((sweep_wall - plain_wall) / n, 2),
        "overhead_per_trial_pct": round(100 * (sweep_wall - plain_wall) / plain_wall, 1),
        "overhead_pct_per_pair": [round(x, 1) for x in per_pair],
        "causes_s": {k: round(v, 2) for k, v in causes.items()},
        "clocked_pct": round(median(clocked_pct), 1), "clocked_pct_per_pair": [round(x, 1) for x in clocked_pct],
        "per_sweep_s": round(once, 1), "per_trial_s": round(every / n, 2),
        "per_trial_pct": round(100 * every / n / plain_trial, 1),
        "default_sweep_trials": default_trials,
        "default_sweep_pct": round(100 * (once / default_trials + every / n) / plain_trial, 1),
        **(by_trial(pairs) if all("sweep_trials" in p for p in pairs) else {}),
        "trials_finished": min(p["trials_finished"] for p in pairs), "pairs": pairs,
        **({"ablation": ablation} if ablation else {})}


# Tiny trials for the ablation: the same iterations, evaluations, checkpoints and MLflow calls with almost no
# training, so that what each switch saves (a second or less) is not lost in the drift of minutes of training.
TINY = {"diffusion": {"steps_per_iteration": 1, "eval_samples": 50},
        "contrastive": {"steps_per_iteration": 1},
        "rl": {"env_steps_per_iteration": 200}}


def ablate(family: str, space: str, repeats: int) -> dict:
    """Parts of the orchestration switched off one at a time, in sweeps of tiny trials, beside the same tiny
    trials back to back: every variant once per repeat, in a rotating order."""
    from orchestration.search_space import load_sweep

    overrides = TINY[family]
    sets = [item for key, value in overrides.items() for item in ("--set", f"{key}={value}")]
    iterations = load_sweep(space).with_overrides(overrides).parameters["iterations"]["value"]
    variants = {"sweep": (), "no system metrics": ("--no-system-metrics",),
                "checkpoint at the end only": ("--checkpoint-every", str(iterations))}
    names = [*variants, "plain"]
    rows = []
    for repeat in range(repeats):
        row = {}
        for name in names[repeat % len(names):] + names[:repeat % len(names)]:
            if name == "plain":
                row[name] = {"wall_s": measure_back_to_back(space, overrides)["back_to_back_wall_s"]}
            else:
                sweep = measure_sweep(space, *sets, *variants[name])
                # the savings are read after Ray's start, which no switch touches and which varies by seconds
                row[name] = {"wall_s": sweep["sweep_wall_s"], "after_start_s": round(
                    sweep["sweep_wall_s"] - sweep["phases"]["checks"] - sweep["phases"]["ray"], 2)}
        rows.append(row)
        print(f"ablation {repeat}: {row}", flush=True)
    switched = [name for name in variants if name != "sweep"]
    saved = {name: [r["sweep"]["after_start_s"] - r[name]["after_start_s"] for r in rows] for name in switched}
    whole = [r["sweep"]["wall_s"] - r["plain"]["wall_s"] for r in rows]
    return {"overrides": overrides, "switches": {k: " ".join(v) for k, v in variants.items() if v}, "runs": rows,
            "saving_s": {name: round(median(x), 2) for name, x in saved.items()},
            "saving_s_per_repeat": {name: [round(v, 2) for v in x] for name, x in saved.items()},
            "tiny_overhead_s": round(median(whole), 1), "tiny_overhead_s_per_repeat": [round(x, 1) for x in whole]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", choices=[*SPACES, "all"], default="all")
    parser.add_argument("--repeats", type=int, default=3, help="sweep / back-to-back pairs; medians are reported")
    parser.add_argument("--ablate", action="store_true",
                        help="only the ablation: tiny-trial sweeps with one part switched off at a time (the "
                             "recorded pairs are kept)")
    parser.add_argument("--summarise-only", action="store_true",
                        help="recompute the summaries from the pairs recorded in bench/results/sweep_overhead.json")
    parser.add_argument("--space", help=argparse.SUPPRESS)
    parser.add_argument("--in-process", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--overrides", default="{}", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.in_process:  # the child process of part (2)
        print(json.dumps(back_to_back(args.space, json.loads(args.overrides))))
        return

    if args.summarise_only:
        resummarise()
        return
    families = list(SPACES) if args.family == "all" else [args.family]
    # an ablation keeps the recorded pairs (and how they were made); new pairs replace a family's block
    blocks = earlier_blocks("sweep_overhead", "families", set() if args.ablate else set(families))
    for family in families:
        space = SPACES[family]
        if args.ablate:
            recorded = blocks.get(family) or sys.exit(f"no recorded pairs for {family}: run without --ablate first")
            ablation = {**ablate(family, str(ROOT / space), args.repeats), "ran": provenance()}
            blocks[family] = {**summarise(family, space, recorded["pairs"], ablation), "ran": recorded["ran"]}
        else:
            blocks[family] = summarise(family, space,
                                       [measure_pair(str(ROOT / space), repeat) for repeat in range(args.repeats)],
                                       None)
        print(json.dumps({k: v for k, v in blocks[family].items() if k != "pairs"}), flush=True)
    write_result("sweep_overhead", {"families": {f: blocks[f] for f in SPACES if f in blocks}})


def resummarise() -> None:
    """The summaries of the recorded pairs, by this file's `summarise`; the measurement keeps its provenance."""
    from common import RESULTS

    path = RESULTS / "sweep_overhead.json"
    result = json.loads(path.read_text())
    for family, block in result["families"].items():
        block.update(summarise(family, block["space"], block["pairs"], block.get("ablation")))
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"rewrote the summaries in {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
