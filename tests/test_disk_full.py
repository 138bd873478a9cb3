"""A full disk ends the sweep within seconds, says where as its last line, and --resume finishes it.

The integration test mounts a real tmpfs (it needs root or CAP_SYS_ADMIN, as on the CI machine) and puts one
of the sweep's three stores on it: MLflow's SQLite file, Tune's folder or the experiment's artifact root. Once
a trial has logged two iterations it fills that disk; the sweep must exit 3 within 30 s, with the full-disk
line last on stderr; after the filler is deleted, the command that line gives must finish the sweep with every
metric step logged exactly once.
"""

import os
import shlex
import subprocess
import sys
import textwrap
import time

import pytest

from conftest import REPO
from orchestration.disk_full import disk_full_message, store_hit, sweep_stores
from orchestration.errors import last_error_line
from orchestration.storage import Storage
from orchestration.sweep import continue_command, parse_args

ITERATIONS = 6
SPACE = f"""
    family: rbm
    metric: {{name: eval/pseudo_log_likelihood, goal: maximize}}
    method: grid
    seeds: 2
    parameters:
      training: {{values: [cd, pcd]}}
      k: {{value: 1}}
      momentum: {{value: 0.5}}
      hidden: {{value: 32}}
      epochs_per_iteration: {{value: 2}}
      iterations: {{value: {ITERATIONS}}}
      ais_chains: {{value: 20}}
      ais_steps: {{value: 100}}
"""
PYARROW_FULL = ("Traceback (most recent call last):\n  File \".../ray/train/_internal/storage.py\", line 568, in "
                "persist_current_checkpoint\n    _pyarrow_fs_copy_files(\nOSError: [Errno 28] Error writing bytes to "
                "file. Detail: [errno 28] No space left on device\n")
SQLITE_FULL = ("orchestration.sender.TrackingUnavailable: (raised as a result of Query-invoked autoflush)\n"
               "(sqlite3.OperationalError) database or disk is full\n")


def stores_in(tmp_path):
    return sweep_stores(f"sqlite:///{tmp_path}/db/mlflow.db", Storage.parse(str(tmp_path / "tune")), "sweep-1",
                        f"file://{tmp_path}/artifacts/1")


def test_the_message_names_the_store_its_file_system_and_the_command(tmp_path):
    stores = stores_in(tmp_path)
    assert [s.name for s in stores] == ["the SQLite file", "the Tune folder", "the artifact root", "the temp folder"]
    assert store_hit(SQLITE_FULL, stores).name == "the SQLite file"
    assert store_hit(PYARROW_FULL, stores).name == "the Tune folder"
    quoted = f"OSError: [Errno 28] No space left on device: '{tmp_path}/artifacts/1/abc/artifacts/samples.png'"
    assert store_hit(quoted, stores).name == "the artifact root"

    line = disk_full_message(PYARROW_FULL, stores, "trial x", "python -m orchestration.sweep rbm --name s --resume")
    assert line.startswith(f"disk full: the Tune folder {tmp_path}/tune/sweep-1 is on ")
    assert " free (with the SQLite file and the artifact root" in line  # one file system holds them all here
    assert "OSError: [Errno 28] Error writing bytes to file" in line and "\n" not in line
    assert line.endswith("then continue with: python -m orchestration.sweep rbm --name s --resume")


def test_the_last_error_line_of_a_traceback():
    assert last_error_line(PYARROW_FULL).startswith("OSError: [Errno 28] Error writing bytes")
    assert last_error_line(SQLITE_FULL) == "(sqlite3.OperationalError) database or disk is full"


def test_the_continue_command_keeps_the_options_and_names_the_run():
    args = parse_args(["rbm", "--storage-path", "/data/runs", "--name", "old", "--set", "k=5", "--resume"])
    assert continue_command(args, "rbm-1") == ("python -m orchestration.sweep rbm --storage-path /data/runs "
                                               "--set k=5 --name rbm-1 --resume")
    assert continue_command(parse_args(["my space.yaml", "--name=x"]), "y") == (
        "python -m orchestration.sweep 'my space.yaml' --name y --resume")


@pytest.fixture
def small_disk(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(disk)], capture_output=True,
                             text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN): {mounted.stderr.strip()}")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def fill(disk) -> None:
    """Write zeros until the file system refuses (tmpfs counts pages: the last writes are a page each)."""
    with open(disk / "filler", "wb", buffering=0) as f:
        for chunk in (1 << 20, 4096):
            try:
                while True:
                    f.write(b"\0" * chunk)
            except OSError:
                pass


def wait_for_steps(client, experiment_name: str, step: int, proc, timeout: float = 180) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, "the sweep ended before the disk filled"
        experiment = client.get_experiment_by_name(experiment_name)
        if experiment and client.search_runs([experiment.experiment_id], f"metrics.`train/epoch` >= {2 * step}"):
            return
        time.sleep(0.3)
    raise AssertionError(f"no trial logged {step} iterations in {timeout} s")


@pytest.mark.slow
@pytest.mark.long
@pytest.mark.parametrize("store", ["the SQLite file", "the Tune folder", "the artifact root"])
def test_a_full_disk_stops_the_sweep_in_seconds_and_resume_finishes_it(tmp_path, small_disk, store):
    from mlflow.tracking import MlflowClient

    (tmp_path / "space.yaml").write_text(textwrap.dedent(SPACE))
    on_disk = {"the SQLite file": small_disk, "the Tune folder": tmp_path, "the artifact root": tmp_path}[store]
    uri = f"sqlite:///{on_disk}/mlflow.db"
    storage = (small_disk if store == "the Tune folder" else tmp_path) / "ray_results"
    client = MlflowClient(uri)
    artifacts = small_disk / "artifacts" if store == "the artifact root" else tmp_path / "artifacts"
    client.create_experiment("full", artifact_location=artifacts.as_uri())
    command = ["rbm", "--space", str(tmp_path / "space.yaml"), "--num-cpus", "2", "--tracking-uri", uri,
               "--experiment", "full", "--storage-path", str(storage), "--no-system-metrics"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with open(tmp_path / "out.txt", "w") as out, open(tmp_path / "err.txt", "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "orchestration.sweep", *command], cwd=tmp_path, env=env,
                                stdout=out, stderr=err)
    try:
        wait_for_steps(client, "full", 2, proc)
        fill(small_disk)
        filled = time.time()
        proc.wait(timeout=120)
        stopped_after = time.time() - filled
    finally:
        if proc.poll() is None:
            proc.kill()
    stderr = (tmp_path / "err.txt").read_text()
    assert proc.returncode == 3, stderr[-3000:]
    assert stopped_after < 30, f"{stopped_after:.0f} s from the full disk to the exit"
    last = stderr.strip().splitlines()[-1]
    print(f"{store}: exit {proc.returncode} {stopped_after:.1f} s after the disk filled; last line: {last}")
    assert last.startswith(f"error: disk full: {store} "), last
    assert str(small_disk) in last and "tmpfs" in last and " free" in last, last
    assert stderr.count("Traceback") == 0, stderr[-3000:]  # one line per distinct trial error, no tracebacks
    assert "[sweep] trial " in stderr and "(traceback: " in stderr

    (small_disk / "filler").unlink()
    resumed = subprocess.run(shlex.split(last.split("then continue with: ")[1].replace(
        "python -m", f"{sys.executable} -m", 1)), cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    experiment = client.get_experiment_by_name("full")
    runs = [r for r in client.search_runs([experiment.experiment_id]) if "mlflow.parentRunId" in r.data.tags]
    assert len(runs) == 4 and all(r.info.status == "FINISHED" for r in runs)
    for run in runs:
        for key in run.data.metrics:
            steps = [m.step for m in client.get_metric_history(run.info.run_id, key)]
            assert len(steps) == len(set(steps)), (key, steps)
        steps = sorted(m.step for m in client.get_metric_history(run.info.run_id, "train/epoch"))
        assert steps == list(range(1, ITERATIONS + 1)), steps
    parent = [r for r in client.search_runs([experiment.experiment_id]) if "mlflow.parentRunId" not in r.data.tags]
    assert parent[0].data.tags["sweep.stopped"].endswith(last.removeprefix("error: "))


def test_library_logs_of_a_full_disk_are_one_line(caplog):
    import errno
    import logging

    from orchestration.console import quiet_library_logs

    quiet_library_logs()
    state = logging.getLogger("ray.tune.execution.experiment_state")
    try:
        raise OSError(errno.ENOSPC, "No space left on device")
    except OSError:
        state.error("Saving experiment state to storage at '/x' failed with exception: ", exc_info=True)
    try:
        raise ValueError("not a disk")
    except ValueError:
        state.error("Another failure: ", exc_info=True)
    logging.getLogger("ray.train._internal.syncer").warning(
        f"Last sync command failed with the following error:\n{PYARROW_FULL}")
    logging.getLogger("ray.tune.tune").warning("Experiment has been interrupted, but the most recent state was "
                                               "saved.\nResume experiment with: Tuner.restore(path=\"/x\")")
    full, other, sync = caplog.records
    assert caplog.handler.format(full).count("\n") == 0
    assert full.getMessage().endswith("failed with exception: OSError: [Errno 28] No space left on device")
    assert "Traceback" in caplog.handler.format(other)  # anything else keeps its traceback
    assert sync.getMessage() == ("Last sync command failed with the following error: OSError: [Errno 28] Error "
                                 "writing bytes to file. Detail: [errno 28] No space left on device")


class FailedTrial:
    """What TrialErrors reads of a Tune trial: its name and the error file Tune appends each failure to."""

    def __init__(self, name: str, error_file):
        self.name, self.error_file = name, str(error_file)

    def __str__(self):
        return self.name


def test_each_distinct_trial_error_is_one_line_and_a_full_disk_stops_the_sweep(tmp_path, capsys):
    import signal

    from orchestration.trial_errors import TrialErrors

    crash = "Traceback (most recent call last):\n  File \"x.py\", line 1, in step\nRuntimeError: injected failure\n"
    for name in ("a", "b"):
        (tmp_path / name).write_text(f"Failure # 1 (occurred at 2026-12-07)\n{crash}")
    (tmp_path / "c").write_text(f"Failure # 1 (occurred at 2026-12-07)\n{crash}Failure # 2 (occurred at now)\n"
                                f"{PYARROW_FULL}")
    signals = []
    previous = signal.signal(signal.SIGUSR1, lambda *_: signals.append("SIGUSR1"))
    try:
        errors = TrialErrors()
        errors.on_trial_recover(0, [], FailedTrial("a", tmp_path / "a"))
        errors.on_trial_error(0, [], FailedTrial("b", tmp_path / "b"))  # the same error: not printed again
        assert not signals and errors.disk_full is None
        errors.on_trial_recover(0, [], FailedTrial("c", tmp_path / "c"))
        errors.on_trial_recover(0, [], FailedTrial("c", tmp_path / "c"))
    finally:
        signal.signal(signal.SIGUSR1, previous)
    lines = capsys.readouterr().err.splitlines()
    assert lines == [f"[sweep] trial a failed (retrying from its last checkpoint): RuntimeError: injected failure "
                     f"(traceback: {tmp_path / 'a'})",
                     "[sweep] trial c failed (stopping the sweep): OSError: [Errno 28] Error writing bytes to file. "
                     f"Detail: [errno 28] No space left on device (traceback: {tmp_path / 'c'})"]
    assert signals == ["SIGUSR1"] and errors.disk_full == (PYARROW_FULL, "trial c")
