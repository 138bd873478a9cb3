"""MLflow tracking against a real server: batching, reuse of a trial's run, failures keep what was logged."""

import time

import pytest

from orchestration.tracking import SweepTracking, TrialRun, resolve_tracking_uri
from orchestration.tuning import gpus_per_trial


def test_resolve_tracking_uri(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert resolve_tracking_uri(None) == f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert resolve_tracking_uri(None) == "http://127.0.0.1:5000"
    assert resolve_tracking_uri("sqlite:////abs/x.db") == "sqlite:////abs/x.db"
    assert resolve_tracking_uri("runs") == (tmp_path / "runs").as_uri()


def test_tracking_uri_for_workers_on_a_cluster():
    from orchestration.cluster import tracking_uri_for_workers

    def up(uri):
        return True

    def down(uri):
        return False

    assert tracking_uri_for_workers("http://127.0.0.1:5000", "auto", "10.0.0.4", up) == "http://10.0.0.4:5000"
    assert tracking_uri_for_workers("http://localhost:5000/", "auto", "10.0.0.4", up) == "http://10.0.0.4:5000/"
    assert tracking_uri_for_workers("http://mlflow.internal:5000", "auto", "10.0.0.4", up) == \
        "http://mlflow.internal:5000"
    assert tracking_uri_for_workers("http://127.0.0.1:5000", None, "10.0.0.4", up) == "http://127.0.0.1:5000"
    # a server that listens on loopback only keeps its URI (fine when every node is this machine)
    assert tracking_uri_for_workers("http://127.0.0.1:5000", "auto", "10.0.0.4", down) == "http://127.0.0.1:5000"


def test_gpus_per_trial():
    assert gpus_per_trial(None, cluster_gpus=0, gpu_fraction=0.25) == 0.0
    assert gpus_per_trial(None, cluster_gpus=4, gpu_fraction=0.25) == 0.25
    assert gpus_per_trial(1.0, cluster_gpus=0, gpu_fraction=0.25) == 1.0


@pytest.fixture
def sweep(mlflow_server, request):
    tracking = SweepTracking(mlflow_server.uri, f"tracking-{request.node.name}")
    tracking.open_parent("tune-exp-1", {"family": "diffusion"}, tags={}, resume=False)
    return tracking


def test_metrics_are_batched_and_a_failure_keeps_them(sweep, tmp_path):
    run = TrialRun(sweep.context(), "t_00000", "lr=0.1", {"lr": 0.1, "channel_mults": [1, 2]}, flush_every_s=3600)
    client = sweep.client
    for step in range(1, 4):
        run.log_metrics({"train/loss": 1.0 / step, "note": "text is skipped"}, step=step)
    assert client.get_metric_history(run.run_id, "train/loss") == [], "metrics wait in the buffer"

    (tmp_path / "art").mkdir()
    (tmp_path / "art" / "samples.png").write_bytes(b"png")
    run.log_artifacts(tmp_path / "art")
    run.fail(ValueError("loss became NaN"))

    stored = client.get_run(run.run_id)
    assert stored.info.status == "FAILED"
    assert stored.data.tags["error"] == "ValueError: loss became NaN"
    assert stored.data.params == {"lr": "0.1", "channel_mults": "[1, 2]"}
    history = client.get_metric_history(run.run_id, "train/loss")
    assert [(m.step, round(m.value, 3)) for m in history] == [(1, 1.0), (2, 0.5), (3, 0.333)]
    assert {a.path for a in client.list_artifacts(run.run_id)} == {"samples.png", "error.txt"}


def test_a_retried_trial_reuses_its_run(sweep):
    first = TrialRun(sweep.context(), "t_00001", "a", {"lr": 0.1})
    first.log_metrics({"train/loss": 2.0}, step=1)
    first.fail(RuntimeError("worker died"))
    again = TrialRun(sweep.context(), "t_00001", "a", {"lr": 0.1})
    assert again.resumed and again.run_id == first.run_id
    assert sweep.client.get_run(again.run_id).info.status == "RUNNING"
    again.log_metrics({"train/loss": 1.0}, step=2)
    again.finish()
    runs = sweep.child_runs()
    assert [r.info.run_id for r in runs] == [first.run_id]
    assert [m.step for m in sweep.client.get_metric_history(first.run_id, "train/loss")] == [1, 2]
    assert sweep.client.get_run(first.run_id).info.status == "FINISHED"


def test_resume_reopens_the_parent(sweep):
    again = SweepTracking(sweep.uri, sweep.experiment_name)
    assert again.open_parent("tune-exp-1", {}, tags={}, resume=True) == sweep.parent_run_id
    other = SweepTracking(sweep.uri, sweep.experiment_name)
    assert other.open_parent("tune-exp-1", {}, tags={}, resume=False) != sweep.parent_run_id


def test_ui_command_points_at_a_tracking_server(capsys):
    from orchestration.ui import main

    assert main(["--tracking-uri", "http://127.0.0.1:5999"]) == 0
    assert capsys.readouterr().out.strip() == ("http://127.0.0.1:5999 is a tracking server; its UI is at "
                                               "http://127.0.0.1:5999/#/experiments?workflowType=machine_learning")


def test_experiments_open_as_model_training_in_the_ui(mlflow_server):
    """MLflow 3's UI shows an experiment without `mlflow.experimentKind` as GenAI (its overview page)."""
    client = mlflow_server.client()
    made = SweepTracking(mlflow_server.uri, "kind-new")
    assert client.get_experiment(made.experiment_id).tags["mlflow.experimentKind"] == "custom_model_development"
    older = client.create_experiment("kind-old")  # made before experiments carried the tag
    SweepTracking(mlflow_server.uri, "kind-old")
    assert client.get_experiment(older).tags["mlflow.experimentKind"] == "custom_model_development"


RACE = """
import sys, time
from orchestration.tracking import SweepTracking
time.sleep(max(0.0, float(sys.argv[2]) - time.time()))  # every process opens the store at the same moment
SweepTracking(sys.argv[1], "race-" + sys.argv[3])
"""


def test_first_opens_of_a_new_sqlite_store_do_not_race(tmp_path):
    """Four processes open a SQLite store that does not exist yet at the same moment: without the lock,
    MLflow's schema migration runs in several of them and all but one die ("duplicate column name")."""
    import os
    import subprocess
    import sys
    import time

    from conftest import REPO

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    start = time.time() + 8  # after every interpreter has imported mlflow
    procs = [subprocess.Popen([sys.executable, "-c", RACE, uri, str(start), str(i)], stderr=subprocess.PIPE,
                              text=True, env={**os.environ, "PYTHONPATH": str(REPO)}) for i in range(4)]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, [e[-500:] for e in errors]
    from mlflow.tracking import MlflowClient

    names = {e.name for e in MlflowClient(uri).search_experiments()}
    assert {f"race-{i}" for i in range(4)} <= names


def test_a_resumed_run_counts_iterations_not_system_metric_samples(sweep):
    """MLflow's system-metrics monitor numbers its samples 0, 1, 2, ...: a trial that ran longer than its
    iterations in samples must still log the iterations after its checkpoint."""
    from mlflow.entities import Metric

    first = TrialRun(sweep.context(system_metrics_s=None), "t_sys", "a", {"lr": 0.1})
    first.log_metrics({"train/loss": 1.0}, step=1)
    first.log_metrics({"train/loss": 0.9}, step=2)
    first.flush()
    sweep.client.log_batch(first.run_id, metrics=[Metric("system/cpu_utilization_percentage", 50.0, 0, s)
                                                  for s in range(30)])
    first.pause()
    again = TrialRun(sweep.context(system_metrics_s=None), "t_sys", "a", {"lr": 0.1})
    assert again.resumed and again.logged_through == 2
    assert "sweep.retries" not in sweep.client.get_run(again.run_id).data.tags, "a paused run is not retried"


@pytest.mark.long  # the default run took 1,023 s on 2026-12-06
def test_sixteen_trials_lose_and_repeat_no_step_while_the_server_is_down(tmp_path, monkeypatch):
    """16 trials log through TrialRun while the server stops for 6 s and comes back on the same port. The
    MLflow client's own retries are off, so each refused request reaches the trial's sender: training goes on,
    no trial fails, and every step of every metric is stored exactly once."""
    import threading

    from conftest import MlflowServer

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    store = tmp_path / "store"
    store.mkdir()
    server = MlflowServer(store)
    try:
        tracking = SweepTracking(server.uri, "outage-16")
        tracking.open_parent("tune-exp", {"family": "diffusion"}, tags={}, resume=False)
        context = tracking.context(server.uri, (), None)
        steps, errors, runs = 24, [], {}

        def trial(name):
            try:
                run = TrialRun(context, name, name, {"lr": 0.1})
                runs[name] = run.run_id
                for step in range(1, steps + 1):
                    blocked = time.perf_counter()
                    run.log_metrics({f"m{i}": step + i for i in range(8)}, step=step)
                    run.flush(wait=False)
                    assert time.perf_counter() - blocked < 1.0, "training waited on the tracking server"
                    time.sleep(0.5)
                run.finish()
            except BaseException as err:
                errors.append(f"{name}: {type(err).__name__}: {err}")

        threads = [threading.Thread(target=trial, args=(f"t{i:02d}",)) for i in range(16)]
        for thread in threads:
            thread.start()
        deadline = time.time() + 60
        while len(runs) < 16 and time.time() < deadline:
            time.sleep(0.1)
        time.sleep(2)
        server.stop()
        time.sleep(6)
        server = MlflowServer(store, port=server.port)
        for thread in threads:
            thread.join(timeout=300)
        assert not errors, errors
        client = server.client()
        for name, run_id in runs.items():
            assert client.get_run(run_id).info.status == "FINISHED"
            for i in range(8):
                logged = sorted(m.step for m in client.get_metric_history(run_id, f"m{i}"))
                assert logged == list(range(1, steps + 1)), (name, f"m{i}", logged)
    finally:
        server.stop()
