"""Racing against full replication: the same tied set for fewer trial-seconds?

1. `--full SPACE`: run SPACE with every configuration at every one of max_seeds seeds (its `race:` block
   dropped, `seeds: max_seeds`), and record each (configuration, seed) final score and trial-seconds.
2. Replay (always, from the recorded runs): at least 200 races over random orders of those seeds, each with the
   space's `race:` settings and `orchestration.verdict.run_race`, the function the searcher decides with.
   Compared with full replication's tied set (the same rule, one look at all max_seeds seeds): how often
   the race ends on the same set or a superset with at most one extra, how many tied configurations it
   eliminated (false eliminations), and the trial-seconds it needed over full replication's. A replayed
   race counts only the trials its looks need; a live race may also run a speculative seed (see --real).
3. `--real N --offset K`: N real races end to end with disjoint seed sets (K, K+max_seeds, ...), each its own
   sweep: their trial-seconds, wall time and worker utilisation, as the sweep itself reports them.

    python bench/race_vs_full.py --full search_spaces/rl.yaml --tracking-uri sqlite:////tmp/race/mlflow.db
    python bench/race_vs_full.py --real 3 --offset 100 search_spaces/rl.yaml --tracking-uri ...
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

from common import ROOT, earlier_blocks, provenance, write_result

NAME = "race_vs_full"


def full_space(path: Path, seeds: int) -> str:
    raw = yaml.safe_load(path.read_text())
    raw.pop("race", None)
    raw["seeds"] = seeds
    return yaml.safe_dump(raw, sort_keys=False)


def sweep(space_text: str, name: str, uri: str, experiment: str, extra: list[str]) -> tuple[int, float, str]:
    """Run one sweep from a space file's text; returns (exit code, wall seconds, stdout)."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "search_spaces"
        folder.mkdir()
        (folder / f"{name}.yaml").write_text(space_text)
        start = time.time()
        done = subprocess.run([sys.executable, "-m", "orchestration.sweep", name, "--tracking-uri", uri,
                               "--experiment", experiment, "--storage-path", str(Path(tmp) / "ray"), *extra],
                              cwd=tmp, capture_output=True, text=True, env={"PYTHONPATH": str(ROOT),
                                                                             **__import__("os").environ})
        wall = time.time() - start
    if done.returncode != 0:
        print(done.stderr[-3000:], file=sys.stderr)
    return done.returncode, wall, done.stdout


def recorded(uri: str, experiment: str):
    """Every configuration's {seed: final} and {seed: trial-seconds}, its failures, the view and the runs'
    configurations, from the newest sweep of the experiment."""
    from mlflow.tracking import MlflowClient

    from orchestration.results import load_results
    from orchestration.results.groups import race_inputs, tied_set
    from orchestration.results.rows import find_parent

    client = MlflowClient(uri)
    exp, parent = find_parent(client, experiment)
    results = load_results(client, exp.experiment_id, parent)
    scores, failures = race_inputs(results.configs)
    seconds = {c.config_id: {r.replicate: r.wall_s for r in c.runs} for c in results.configs}
    labels = {c.config_id: c.label() for c in results.configs}
    tied = {c.config_id for c in tied_set(results.configs)}
    return results, scores, seconds, failures, labels, tied, parent


def replay(scores, seconds, failures, tied, first_seeds, mode, alpha, races, seed=0) -> dict:
    from orchestration.verdict import run_race

    ids = sorted(scores)
    seeds = sorted({s for c in ids for s in list(scores[c]) + list(failures[c])})
    full_cost = sum(seconds[c][s] for c in ids for s in seeds if s in seconds[c])
    rng = np.random.default_rng(seed)
    same = within_one = false_eliminations = races_with_false = 0
    ratios, sizes, trials = [], [], []
    for _ in range(races):
        order = list(rng.permutation(seeds))
        race = run_race(ids, scores, failures, order, first_seeds, mode, alpha)
        survivors = set(race.alive)
        lost = tied - survivors
        same += survivors == tied
        within_one += survivors >= tied and len(survivors - tied) <= 1
        false_eliminations += len(lost)
        races_with_false += bool(lost)
        used = {c: order[:race.rounds[race.eliminated[c][0] - 1].seeds] if c in race.eliminated else
                order[:race.looked] for c in ids}
        ratios.append(sum(seconds[c][s] for c in ids for s in used[c]) / full_cost)
        trials.append(sum(len(v) for v in used.values()))
        sizes.append(len(survivors))
    return {"races": races, "same_set": same / races, "same_or_superset_within_one": within_one / races,
            "false_eliminations": false_eliminations, "races_with_a_false_elimination": races_with_false,
            "trial_seconds_ratio_median": float(np.median(ratios)),
            "trial_seconds_ratio_quartiles": [float(np.quantile(ratios, 0.25)), float(np.quantile(ratios, 0.75))],
            "trials_median": float(np.median(trials)), "full_trials": len(ids) * len(seeds),
            "survivors_median": float(np.median(sizes)), "full_tied_set_size": len(tied)}


USAGE = re.compile(r"(\d+) trial-seconds in (\d+) s on (\d+) trial slots?: workers busy (\d+)%")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("space", type=Path, help="a search space with a `race:` block")
    parser.add_argument("--tracking-uri", required=True)
    parser.add_argument("--full", action="store_true", help="run full replication first (else read it)")
    parser.add_argument("--real", type=int, default=0, metavar="N", help="then run N real races")
    parser.add_argument("--offset", type=int, default=100, help="the first real race's seed offset")
    parser.add_argument("--races", type=int, default=400, help="replayed races")
    parser.add_argument("--note", help="why the numbers are what they are (kept with the space's block)")
    args = parser.parse_args()

    from orchestration.search_space import load_sweep

    spec = load_sweep(str(args.space))
    if not spec.race:
        raise SystemExit(f"{args.space}: has no race: block")
    key = spec.name
    experiment = f"race-vs-full-{key}"
    blocks = earlier_blocks(NAME, "spaces", set())  # this space's own block too: its real races and full wall
    block = dict(blocks.get(key, {}))
    if args.full:
        code, wall, _ = sweep(full_space(args.space, spec.race["max_seeds"]), key, args.tracking_uri, experiment, [])
        if code != 0:
            raise SystemExit(f"full replication exited {code}")
        block["full_wall_s"] = round(wall, 1)
    results, scores, seconds, failures, labels, tied, parent = recorded(args.tracking_uri, experiment)
    block.update({
        "space": str(args.space), "race": spec.race, "metric": spec.metric, "mode": spec.mode,
        "configurations": len(scores), "full": {
            labels[c]: {"mean": float(np.mean(list(scores[c].values()))) if scores[c] else None,
                        "seeds": len(scores[c]), "tied": c in tied,
                        "trial_seconds": round(sum(seconds[c].values()), 1)} for c in scores},
        "full_trial_seconds": round(sum(sum(v.values()) for v in seconds.values()), 1),
        "replay": replay(scores, seconds, failures, tied, spec.race["first_seeds"], spec.mode, spec.race["alpha"],
                         args.races),
        "ran": provenance()})
    if args.note:
        block["note"] = args.note
    real = list(block.get("real", [])) if not args.full else []
    for i in range(args.real):
        offset = args.offset + i * spec.race["max_seeds"]
        code, wall, out = sweep(args.space.read_text(), key, args.tracking_uri, f"{experiment}-real",
                                ["--seed-offset", str(offset)])
        usage = USAGE.search(out)
        answer = [line[len("[sweep] "):] for line in out.splitlines() if line.startswith("[sweep] tied with it")
                  or line.startswith("[sweep] raced:") or line.startswith("[sweep] best configuration")]
        real.append({"offset": offset, "exit": code, "wall_s": round(wall, 1),
                     "trial_seconds": int(usage.group(1)) if usage else None,
                     "span_s": int(usage.group(2)) if usage else None,
                     "slots": int(usage.group(3)) if usage else None,
                     "utilisation": int(usage.group(4)) / 100 if usage else None,
                     "rounds": [line for line in out.splitlines() if line.startswith("[race] ")], "answer": answer})
        print(real[-1])
    if real:
        block["real"] = real
    blocks[key] = block
    write_result(NAME, {"spaces": blocks})
    print(block["replay"])


if __name__ == "__main__":
    main()
