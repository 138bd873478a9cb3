"""`report` on a store holding more runs than one MLflow search returns: 12,000 runs of one sweep (4,000
configurations x 3 seeds, bulk-created through MLflow's client API), every configuration in the table with
its 3 seeds and the right mean, and the planted best named best."""

from __future__ import annotations

import csv
import io
import os
import shutil
import tempfile
import time

import pytest

from conftest import run_cli

pytestmark = [pytest.mark.slow, pytest.mark.long]

CONFIGS, SEEDS = 4_000, 3


def planted_fid(config: int, seed: int) -> float:
    """Configuration 0 is clearly best; the rest spread over 20-60 with seed noise of +-0.3."""
    return 5.0 + 0.1 * seed if config == 0 else 20.0 + (config * 7919 % 4_001) / 100 + 0.3 * (seed - 1)


def bulk_sweep(uri: str) -> None:
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    from orchestration.search_space import config_id
    from orchestration.tracking import CONFIG_TAG, PARENT_TAG, TRIAL_TAG, TUNE_EXPERIMENT_TAG

    client = MlflowClient(uri)
    experiment_id = client.create_experiment("many")
    parent = client.create_run(experiment_id, tags={TUNE_EXPERIMENT_TAG: "many-1"}, run_name="many-1")
    client.log_batch(parent.info.run_id, params=[Param("family", "diffusion"), Param("metric", "eval/fid"),
                                                 Param("mode", "min"), Param("swept", "lr,seed")])
    for config in range(CONFIGS):
        lr = f"{1e-4 * (1 + config / 1000):.7g}"
        for seed in range(SEEDS):
            run = client.create_run(experiment_id, run_name=f"lr={lr},seed={seed}", tags={
                PARENT_TAG: parent.info.run_id, TRIAL_TAG: f"t{config}_{seed}",
                CONFIG_TAG: config_id({"lr": lr})})
            client.log_batch(run.info.run_id, params=[Param("lr", lr), Param("seed", str(seed)),
                                                      Param("iterations", "1"), Param("eval_samples", "64")],
                             metrics=[Metric("eval/fid", planted_fid(config, seed), 0, 1)])
            client.set_terminated(run.info.run_id, "FINISHED")


def test_report_is_complete_and_correct_for_12000_runs(artifact_dir):
    # tmpfs when there is one: SQLite's per-commit sync makes 12,000 runs take 20 minutes on a disk
    folder = tempfile.mkdtemp(dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    try:
        uri = f"sqlite:///{folder}/mlflow.db"
        started = time.time()
        bulk_sweep(uri)
        created_s = time.time() - started
        started = time.time()
        report = run_cli(["many", "--tracking-uri", uri, "--format", "csv"], cwd=folder, module="orchestration.report",
                         timeout=900)
        report_s = time.time() - started
        assert report.returncode == 0, report.stderr[-3000:]
        table = list(csv.DictReader(io.StringIO(report.stdout)))
        assert len(table) == CONFIGS
        assert all(row["seeds"] == str(SEEDS) for row in table)
        means = {row["lr"]: float(row["eval/fid (eval_samples=64) mean"]) for row in table}
        for config in (0, 1, 1234, CONFIGS - 1):
            lr = f"{1e-4 * (1 + config / 1000):.7g}"
            expected = sum(planted_fid(config, seed) for seed in range(SEEDS)) / SEEDS
            assert means[lr] == pytest.approx(expected, abs=1e-6), lr
        best = [row for row in table if row["tied with best"] == "best"]
        assert [row["lr"] for row in best] == ["0.0001"]
        (artifact_dir / "report_12000_runs.txt").write_text(f"created {created_s:.0f} s, report {report_s:.1f} s\n")
        print(f"12,000 runs: created in {created_s:.0f} s, report in {report_s:.1f} s")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
