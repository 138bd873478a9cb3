"""BENCHMARKS.md is generated: it must match what bench/report.py renders from bench/results/*.json,
so no number in it can be edited by hand or left behind when a benchmark is rerun."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_benchmarks_md_is_rendered_from_the_committed_results(tmp_path):
    rendered = tmp_path / "BENCHMARKS.md"
    subprocess.run([sys.executable, "bench/report.py", "--output", str(rendered)], cwd=ROOT, check=True,
                   capture_output=True)
    assert rendered.read_text() == (ROOT / "BENCHMARKS.md").read_text(), \
        "BENCHMARKS.md is stale: run python bench/report.py"


def test_every_result_names_the_command_and_commit_that_produced_it():
    results = sorted((ROOT / "bench" / "results").glob("*.json"))
    assert {p.stem for p in results} >= {"rl_dqn", "rl_a2c", "rl_scaling", "diffusion", "sweep_overhead",
                                          "asha_vs_grid", "memory_diffusion"}
    for path in results:
        result = json.loads(path.read_text())
        script = result["command"].split()[1]
        assert result["command"].startswith("python bench/") and (ROOT / script).exists(), path.name
        assert result["machine"]["cpus"] >= 1 and result["date"], path.name
        commit = result["git_commit"].removesuffix("+changes")
        # An ancestor of HEAD, not only an object here: a commit made in a throwaway worktree exists locally
        # but not in a fresh clone.
        assert subprocess.run(["git", "merge-base", "--is-ancestor", commit, "HEAD"], cwd=ROOT,
                              capture_output=True).returncode == 0, \
            f"{path.name}: commit {commit} is not in this repository's history"
