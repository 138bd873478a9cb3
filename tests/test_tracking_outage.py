"""The MLflow server goes away for longer than the client's retries last (shortened here through
MLflow's own environment variables): the sweep stops with one line and exit 3, no traceback, and once
the server is back `--resume` finishes every trial with every metric step exactly once, step 0 (the
evaluation before training) included, whether the outage began before or after the first metrics
reached the server."""

import os
import subprocess
import sys
import textwrap
import time

import pytest

from conftest import REPO, MlflowServer, run_cli

pytestmark = [pytest.mark.slow, pytest.mark.long]

# MLflow's client retries once, and a trial's own retries (orchestration.sender) give up after 5 s
SHORT_RETRIES = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                 "SWEEP_TRACKING_RETRY_S": "5"}


# when the server goes down: as soon as the trial's run holds its params (its step-0 evaluation is then
# still in the trial's buffer, so the first attempt never sends it), or once a training step is stored
OUTAGE_FROM = {"run created": "params.schedule = 'cosine'", "first step stored": "metrics.`train/loss` > 0"}


@pytest.mark.parametrize("outage_from", sorted(OUTAGE_FROM))
def test_an_outage_beyond_the_retries_stops_the_sweep_resumably(tmp_path, outage_from):
    (tmp_path / "search_spaces").mkdir()
    (tmp_path / "search_spaces" / "tiny.yaml").write_text(textwrap.dedent(f"""
        family: diffusion
        parameters:
          schedule: {{values: [cosine]}}
          timesteps: {{value: 50}}
          iterations: {{value: 4}}
          steps_per_iteration: {{value: 20}}
          batch_size: {{value: 32}}
          base_channels: {{value: 8}}
          eval_samples: {{value: 64}}
          sample_steps: {{value: 5}}
          cache_dir: {{value: "{tmp_path / 'cache'}"}}
    """))
    store = tmp_path / "store"
    store.mkdir()
    server = MlflowServer(store)
    args = ["tiny", "--num-cpus", "2", "--tracking-uri", server.uri, "--experiment", "outage", "--max-failures", "1"]
    sweep = subprocess.Popen([sys.executable, "-m", "orchestration.sweep", *args], cwd=tmp_path, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env={**os.environ, "PYTHONPATH": str(REPO), **SHORT_RETRIES})
    client = server.client()
    deadline = time.time() + 300
    while time.time() < deadline:
        experiment = client.get_experiment_by_name("outage")
        if experiment and client.search_runs([experiment.experiment_id], OUTAGE_FROM[outage_from]):
            break
        time.sleep(0.1)
    server.stop()
    try:
        out, err = sweep.communicate(timeout=600)
    finally:
        server = MlflowServer(store, port=server.port)
    try:
        assert sweep.returncode == 3, err[-3000:]
        errors = [line for line in err.splitlines() if line.startswith("error: ")]
        (name,) = [folder.name for folder in (tmp_path / "ray_results").iterdir() if folder.is_dir()]
        assert errors == ["error: the MLflow tracking server stopped answering (after the client's retries); what "
                          "was logged and checkpointed is kept: once that is fixed, continue with: python -m "
                          f"orchestration.sweep {' '.join(args)} --name {name} --resume"], err[-3000:]
        assert err.strip().splitlines()[-1] == errors[0], "the driver's last word is that line, not a traceback"

        resumed = run_cli([*args, "--resume"], cwd=tmp_path, timeout=600)
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        client = server.client()
        experiment = client.get_experiment_by_name("outage")
        runs = [r for r in client.search_runs([experiment.experiment_id]) if "mlflow.parentRunId" in r.data.tags]
        assert [r.data.params["schedule"] for r in runs] == ["cosine"]
        parent = next(r for r in client.search_runs([experiment.experiment_id])
                      if "mlflow.parentRunId" not in r.data.tags)
        assert "the MLflow tracking server stopped answering" in parent.data.tags["sweep.stopped"]
        for run in runs:
            assert run.info.status == "FINISHED"
            for metric, steps in (("train/loss", [1, 2, 3, 4]), ("eval/fid", [0, 1, 2, 3, 4])):
                history = client.get_metric_history(run.info.run_id, metric)
                assert sorted(m.step for m in history) == steps, (metric, history)
            assert "samples.png" in {a.path for a in client.list_artifacts(run.info.run_id)}
    finally:
        server.stop()
