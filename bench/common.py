"""What every benchmark shares: the repo on sys.path, the machine it ran on, and one JSON file per benchmark.

Each script writes `bench/results/<name>.json` holding its command line, the machine and its numbers;
`bench/report.py` renders all of them into BENCHMARKS.md, so the numbers there are never typed by hand.
"""

from __future__ import annotations

import json
import math
import os
import platform
import shlex
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def machine() -> dict:
    import torch

    return {"cpus": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)}


def command() -> str:
    script = Path(sys.argv[0]).resolve().relative_to(ROOT)
    return " ".join(["python", str(script), *map(shlex.quote, sys.argv[1:])])


def git_commit() -> str:
    """The commit the benchmark ran at, with "+changes" when the measured code differed from it.
    $BENCH_GIT_COMMIT wins: a copy of the tree on another machine (a GPU node) may carry a stale .git."""
    import subprocess

    if os.environ.get("BENCH_GIT_COMMIT"):
        return os.environ["BENCH_GIT_COMMIT"]

    def git(*args):
        try:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()
        except OSError:  # no git where it ran (a bare GPU node)
            return ""

    commit = git("rev-parse", "--short=12", "HEAD") or "unknown"
    changed = git("status", "--porcelain", "--untracked-files=no", "--", "algorithms", "orchestration", "bench/*.py")
    return commit + ("+changes" if changed else "")


def write_result(name: str, result: dict) -> Path:
    """Save one benchmark's numbers with the command and the commit that produced them."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    payload = {"benchmark": name, **provenance(), "machine": machine(), **result}
    path.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {path.relative_to(ROOT)}")
    return path


def provenance(**extra) -> dict:
    """How a result was made: the command line, the commit and the time (plus anything in extra)."""
    return {"command": command(), "git_commit": git_commit(),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), **extra}


def earlier_blocks(name: str, field: str, replaced: set[str]) -> dict:
    """The blocks under `field` of the previous `<name>.json` that this run does not redo, each keeping how
    it was made (its own `ran`, else the old file's), so a run of some parts updates only those."""
    path = RESULTS / f"{name}.json"
    if not path.exists():
        return {}
    previous = json.loads(path.read_text())
    made = {key: previous.get(key) for key in ("command", "git_commit", "note", "date") if key in previous}
    return {key: {**block, "ran": block.get("ran", made)} for key, block in previous.get(field, {}).items()
            if key not in replaced}


def shown_path(path: str | Path) -> str:
    """A path relative to the repository when it is inside it (results name their inputs portably)."""
    path = Path(path).resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def our_params(algorithm: str) -> dict:
    """The values of `algorithms.rl.PARAMS` the RL benchmarks run ours with: the sweep's defaults, A2C at the
    best lr of search_spaces/rl.yaml's A2C grid (PARAMS' lr, 0.001, is DQN's)."""
    from algorithms.rl import PARAMS

    flat = {name: spec.default for name, spec in PARAMS.items()}
    flat["algorithm"] = algorithm
    if algorithm == "a2c":
        flat["lr"] = 2e-3
    return flat


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def sweep_command(space: Path | str, workdir: Path, *extra: str) -> list[str]:
    """`python -m orchestration.sweep` as a user runs it, with its Tune state and embedded MLflow (SQLite)
    kept in workdir."""
    workdir.mkdir(parents=True, exist_ok=True)
    return [sys.executable, "-m", "orchestration.sweep", str(space), "--storage-path", str(workdir / "ray_results"),
            "--tracking-uri", f"sqlite:///{workdir / 'mlflow.db'}", *extra]


def run_sweep(space: Path | str, workdir: Path, name: str, *extra: str,
              allow_failed_trials: bool = False) -> tuple[float, Path]:
    """Run a sweep to the end; returns its wall time and the Tune experiment directory.
    `allow_failed_trials`: exit 1 (some trials failed, e.g. a diverging learning rate) is a result too."""
    import subprocess

    from orchestration.errors import EXIT_TRIALS_FAILED

    cmd = sweep_command(space, workdir, "--name", name, *extra)
    print("$", " ".join(cmd), flush=True)
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.DEVNULL)
    if done.returncode and not (allow_failed_trials and done.returncode == EXIT_TRIALS_FAILED):
        raise subprocess.CalledProcessError(done.returncode, cmd)
    return time.perf_counter() - start, workdir / "ray_results" / name


def sweep_once(space: Path | str, workdir: Path, name: str, *extra: str, allow_failed_trials: bool = False) -> float:
    """Run the sweep unless workdir holds a finished one (an interrupted benchmark continues where it
    stopped); returns its wall time."""
    done = workdir / "wall_s.txt"
    if not done.exists():
        wall, _ = run_sweep(space, workdir, name, *extra, allow_failed_trials=allow_failed_trials)
        done.write_text(f"{wall:.1f}")
    return float(done.read_text())


def sweep_store(workdir: Path):
    """The MLflow client and the one experiment of a sweep that `sweep_command` kept in workdir."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    return client, client.search_experiments(filter_string="name != 'Default'")[0]


@dataclass
class TrialTime:
    config: dict
    final: float | None
    iterations: int
    wall_s: float  # Tune's time_total_s: the time spent inside the trial's steps
    outcome: str


def sweep_rows(space: Path | str, experiment_dir: Path):
    """The sweep's trials from Tune's saved state, best first: config, final metric, iterations, the
    time Tune measured inside each trial, and its outcome."""
    from ray.tune import ExperimentAnalysis

    from orchestration.results.rows import tune_outcomes
    from orchestration.search_space import load_sweep

    spec = load_sweep(str(space))
    outcomes = tune_outcomes(str(experiment_dir), lambda c: int(spec.family.resolve(c)[spec.family.budget_param]))
    rows = []
    for trial in ExperimentAnalysis(str(experiment_dir)).trials:
        last = trial.last_result or {}
        final = last.get(spec.metric)
        rows.append(TrialTime({k: trial.config.get(k) for k in spec.swept_keys},
                              None if final is None or math.isnan(final) else float(final),
                              int(last.get("training_iteration", 0) or 0), float(last.get("time_total_s", 0.0) or 0.0),
                              outcomes[trial.trial_id]))
    sign = 1 if spec.mode == "min" else -1
    return spec, sorted(rows, key=lambda r: (r.final is None, sign * (r.final or 0.0)))
