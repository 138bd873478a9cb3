"""Benchmark (not a test): does a default sweep's answer hold when it is re-run with other seeds?

Runs each default sweep twice as a user would, `python -m orchestration.sweep SWEEP` (seeds 0-2) and the
same with `--seed-offset 3` (seeds 3-5), each into its own MLflow experiment, then compares the two
answers: every configuration's mean with its 95% CI and whether it is tied with the best, and whether
the two tied-best sets overlap. Writes bench/results/seed_stability.json.

    python bench/seed_stability.py                         # diffusion contrastive momentum rl, about 80 min
    python bench/seed_stability.py diffusion
    python bench/seed_stability.py --collect sqlite:////tmp/sweeps/mlflow.db --walls /tmp/sweeps/walls.txt
        # the same tables from runs already made with exactly these commands (experiments SWEEP-0, SWEEP-3)
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, earlier_blocks, provenance, write_result

SWEEPS = ["diffusion", "contrastive", "momentum", "rl"]
OFFSETS = (0, 3)


def sweep_cli(sweep: str, offset: int, uri: str, storage: Path) -> list[str]:
    return [sys.executable, "-m", "orchestration.sweep", sweep, "--seed-offset", str(offset), "--tracking-uri", uri,
            "--storage-path", str(storage), "--experiment", f"{sweep}-{offset}"]


def answer(uri: str, experiment: str) -> dict:
    """The sweep's configurations (best first) and its tied-best set, from MLflow like the report CLI."""
    from mlflow.tracking import MlflowClient

    from orchestration.results import load_results
    from orchestration.results.groups import tied_set
    from orchestration.results.rows import find_parent

    client = MlflowClient(uri)
    found, parent = find_parent(client, experiment)
    results = load_results(client, found.experiment_id, parent)
    rows = [{"config": c.label(), "seeds": sorted(c.scores), "mean": c.mean,
             "ci": [c.interval.low, c.interval.high] if c.interval else None,
             "tied": "best" if c.is_best else c.tied} for c in results.configs]
    return {"metric": results.view.metric, "mode": results.view.mode, "configurations": rows,
            "best": rows[0]["config"], "tied_set": [c.label() for c in tied_set(results.configs)]}


def read_walls(path: Path) -> dict[tuple[str, int], float]:
    """Lines "SWEEP OFFSET rc=0 wall=SECONDS" written by whoever ran the commands."""
    walls = {}
    for line in path.read_text().splitlines():
        sweep, offset, _, wall = line.split()
        walls[(sweep, int(offset))] = float(wall.split("=")[1])
    return walls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweeps", nargs="*", default=SWEEPS)
    parser.add_argument("--collect", metavar="URI", help="read the runs from this tracking URI instead of running")
    parser.add_argument("--walls", type=Path, help="with --collect: the wall times of those runs")
    parser.add_argument("--note", default="", help="with --collect: how those runs were made (shown in the report)")
    args = parser.parse_args()

    walls: dict[tuple[str, int], float] = read_walls(args.walls) if args.walls else {}
    tmp = Path(tempfile.mkdtemp(prefix="seed-stability-"))
    uri = args.collect or f"sqlite:///{tmp / 'mlflow.db'}"
    results = {}
    for sweep in args.sweeps:
        runs = []
        for offset in OFFSETS:
            if not args.collect:
                start = time.perf_counter()
                subprocess.run(sweep_cli(sweep, offset, uri, tmp / "ray_results"), cwd=ROOT, check=True,
                               stdout=subprocess.DEVNULL)
                walls[(sweep, offset)] = time.perf_counter() - start
            runs.append({"seeds": f"{offset}-{offset + 2}", "wall_s": walls.get((sweep, offset)),
                         "command": " ".join(["python", "-m", "orchestration.sweep", sweep, "--seed-offset",
                                              str(offset)]),
                         **answer(uri, f"{sweep}-{offset}")})
        overlap = sorted(set(runs[0]["tied_set"]) & set(runs[1]["tied_set"]))
        results[sweep] = {"runs": runs, "tied_overlap": overlap, "same_best": runs[0]["best"] == runs[1]["best"],
                          "ran": provenance(note=args.note)}
        print(f"{sweep}: tied sets {runs[0]['tied_set']} / {runs[1]['tied_set']}; overlap {overlap}", flush=True)
    sweeps = {**earlier_blocks("seed_stability", "sweeps", set(results)), **results}
    write_result("seed_stability", {"sweeps": sweeps, "note": args.note})


if __name__ == "__main__":
    main()
