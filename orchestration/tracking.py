"""MLflow tracking: one experiment per sweep, a parent run per invocation, a child run per trial.

The driver opens the parent run (`SweepTracking`); each trial, in its Ray worker, opens or
reuses its child run (`TrialRun`) found by the tag `ray.trial_id`, so a resumed or retried
trial keeps logging into the same run. Metrics are buffered and sent with log_batch from a background
thread (`orchestration.sender`), which retries what an overloaded server refuses; a trial's other
requests to MLflow are retried the same way.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from orchestration.errors import SweepError
from orchestration.search_space import config_id
from orchestration.sender import MAX_BATCH, BatchSender, call_with_retries

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
PARENT_TAG = "mlflow.parentRunId"
TRIAL_TAG = "ray.trial_id"
TUNE_EXPERIMENT_TAG = "sweep.tune_experiment"
RACE_ROUND_TAG = "race.round"  # a raced trial: the round that first looks at its seed
CONFIG_TAG = "sweep.config_id"  # the same on every replicate (seed) of one configuration
STOPPED_EARLY_TAG = "sweep.stopped_early"
EXPLOIT_TAG = "pbt.exploit"
HP_PREFIX = "hp/"  # metric hp/<name>: the live value of a parameter PBT may change, one point per iteration
SYSTEM_PREFIX = "system/"  # MLflow's system metrics: their steps count samples, not iterations
MAX_PARAM_LENGTH = 6000
# MLflow 3's UI opens an experiment without this tag on its GenAI overview; ours are model training
EXPERIMENT_TAGS = {"mlflow.experimentKind": "custom_model_development"}


def sqlite_path(uri: str) -> str:
    """The file of a sqlite:///PATH tracking URI ("" for any other URI)."""
    return uri[len("sqlite:///"):] if uri.startswith("sqlite:///") else ""


def resolve_tracking_uri(cli_value: str | None) -> str:
    """--tracking-uri, else MLFLOW_TRACKING_URI, else sqlite:///mlflow.db; local paths made absolute
    because Tune runs each trial in its own working directory."""
    uri = cli_value or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI
    if uri.startswith("sqlite:///"):
        path = sqlite_path(uri)
        if path and not path.startswith("/") and path != ":memory:":
            return "sqlite:///" + str(Path(path).resolve())
    elif "://" not in uri:
        return Path(uri).resolve().as_uri()
    return uri


def server_health(uri: str, timeout: float = 5.0) -> str | None:
    """None when the MLflow server at `uri` answers /health, else why not (one line)."""
    import requests

    try:
        response = requests.get(uri.rstrip("/") + "/health", timeout=timeout)
    except requests.RequestException as err:
        return f"is unreachable: {type(err).__name__}"
    return None if response.status_code == 200 else f"answered /health with HTTP {response.status_code}"


def server_access(uri: str, timeout: float = 5.0) -> str | None:
    """None when the server lets these credentials in, else why not (one line). The credentials are
    MLflow's own: MLFLOW_TRACKING_USERNAME / _PASSWORD (or _TOKEN), else its credentials file."""
    from mlflow.utils.credentials import get_default_host_creds, read_mlflow_creds
    from mlflow.utils.rest_utils import http_request

    try:
        response = http_request(get_default_host_creds(uri), "/api/2.0/mlflow/experiments/search", "POST",
                                json={"max_results": 1}, max_retries=0, timeout=timeout)
    except Exception as err:  # it answered /health a moment ago: a timeout, a dropped connection
        return f"answered /health but not a search ({type(err).__name__})"
    if response.status_code not in (401, 403):
        return None
    user = read_mlflow_creds().username
    if user:
        return f"refused user {user!r} (HTTP {response.status_code}): check MLFLOW_TRACKING_PASSWORD"
    return (f"asks for credentials (HTTP {response.status_code}): set MLFLOW_TRACKING_USERNAME and "
            "MLFLOW_TRACKING_PASSWORD, or write them to MLflow's credentials file (~/.mlflow/credentials)")


def check_tracking_uri(uri: str, timeout: float = 5.0) -> None:
    """Fail fast, in one line, when the tracking store cannot be reached or written."""
    scheme = urlparse(uri).scheme
    if scheme in ("http", "https"):
        problem = server_health(uri, timeout) or server_access(uri, timeout)
        if problem:
            raise SweepError(f"MLflow tracking URI {uri} {problem}")
    elif scheme == "sqlite":
        folder = Path(sqlite_path(uri)).parent
        if not folder.is_dir():
            raise SweepError(f"MLflow tracking URI {uri}: folder {folder} does not exist")
        if not os.access(folder, os.W_OK):
            raise SweepError(f"MLflow tracking URI {uri}: folder {folder} is not writable")


_INITIALISED: set[str] = set()


def _client(uri: str):
    """An MlflowClient; the first one per process for a SQLite file opens the store under a file lock.

    MLflow creates and migrates a new SQLite database's schema when a store first opens it, without
    a lock of its own: two sweeps started at the same moment in a folder without mlflow.db both
    migrate, and the second dies with "duplicate column name". The lock makes the second wait until
    the first has finished; after that opening the store only reads the schema's version."""
    from mlflow.tracking import MlflowClient

    path = sqlite_path(uri)
    if not path or path == ":memory:" or uri in _INITIALISED:
        return MlflowClient(tracking_uri=uri)
    import fcntl

    with open(f"{path}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            client = MlflowClient(tracking_uri=uri)  # opens (creates, migrates) the tracking store
            client.search_registered_models(max_results=1)  # and the registry's, on the same file
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
        _INITIALISED.add(uri)
    return client


PAGE = 1_000


def artifact_location(uri: str, experiment_name: str) -> str | None:
    """Where the experiment's artifacts go (a path, file:// or a server's mlflow-artifacts: URI); None when
    the store cannot say (reading works on a full disk; a server may be gone)."""
    try:
        experiment = _client(uri).get_experiment_by_name(experiment_name)
    except Exception:
        return None
    return experiment.artifact_location if experiment else None


def all_runs(client, experiment_ids: list[str], filter_string: str, page: int = PAGE) -> list:
    """Every run the filter matches, page by page: one search_runs answers at most max_results (and a
    server caps that), so a sweep with more runs than one page would silently lose the rest."""
    runs, token = [], None
    while True:
        found = client.search_runs(experiment_ids, filter_string=filter_string, max_results=page, page_token=token)
        runs.extend(found)
        token = found.token
        if not token:
            return runs


def _param_text(value) -> str:
    return str(value)[:MAX_PARAM_LENGTH]


def log_params(client, run_id: str, params: dict) -> None:
    from mlflow.entities import Param

    items = [Param(k, _param_text(v)) for k, v in params.items()]
    for i in range(0, len(items), 100):
        client.log_batch(run_id, params=items[i:i + 100])


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent,
                             capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


@dataclass(frozen=True)
class TrackingContext:
    """What a trial needs to find its place in MLflow; sent to workers by Tune."""

    tracking_uri: str
    experiment_id: str
    parent_run_id: str
    config_keys: tuple[str, ...] = ()  # the swept parameters but the seed: a configuration's id
    system_metrics_s: float | None = 10.0  # MLflow system-metrics sampling interval; None: off
    race: tuple[int, int] | None = None  # a race's (seed_offset, first_seeds): child runs get a race.round tag


@contextlib.contextmanager
def write_permission(uri: str, experiment_name: str):
    """A tracking server that lets a user in but not write to this experiment: one line, before any trial."""
    from mlflow.exceptions import MlflowException

    try:
        yield
    except MlflowException as err:
        if err.error_code != "PERMISSION_DENIED":
            raise
        from mlflow.utils.credentials import read_mlflow_creds

        user = read_mlflow_creds().username or "(anonymous)"
        raise SweepError(f"MLflow at {uri} does not let user {user!r} write to experiment {experiment_name!r} "
                         "(PERMISSION_DENIED): its owner or an admin can grant EDIT, or choose another "
                         "--experiment") from None


def check_experiment_writable(uri: str, experiment_name: str) -> None:
    """A server that lets a user in may not let them write to this experiment (another user's, under
    basic-auth): found out with an idempotent write (a tag set to the value it has) before Ray starts."""
    if urlparse(uri).scheme not in ("http", "https"):
        return
    client = _client(uri)
    with write_permission(uri, experiment_name):
        experiment = client.get_experiment_by_name(experiment_name)
        if experiment is None or experiment.lifecycle_stage == "deleted":
            return  # anyone let in may create an experiment
        key, value = next(iter(EXPERIMENT_TAGS.items()))
        client.set_experiment_tag(experiment.experiment_id, key, experiment.tags.get(key, value))


class SweepTracking:
    """Driver side: the experiment and parent run of one sweep invocation."""

    def __init__(self, tracking_uri: str, experiment_name: str):
        self.uri = tracking_uri
        self.client = _client(tracking_uri)
        experiment = self.client.get_experiment_by_name(experiment_name)
        if experiment is None:
            self.experiment_id = self.client.create_experiment(experiment_name, tags=EXPERIMENT_TAGS)
        else:
            if experiment.lifecycle_stage == "deleted":
                self.client.restore_experiment(experiment.experiment_id)
            self.experiment_id = experiment.experiment_id
            for key, value in EXPERIMENT_TAGS.items():
                if key not in experiment.tags:
                    self.client.set_experiment_tag(self.experiment_id, key, value)
        self.experiment_name = experiment_name
        self.parent_run_id: str | None = None

    def context(self, worker_uri: str | None = None, config_keys=(), system_metrics_s: float | None = 10.0,
                race: tuple[int, int] | None = None) -> TrackingContext:
        """What trials get; `worker_uri` is the same store as seen from other nodes."""
        return TrackingContext(worker_uri or self.uri, self.experiment_id, self.parent_run_id, tuple(config_keys),
                               system_metrics_s, race)

    def find_parent(self, tune_experiment: str) -> str | None:
        runs = self.client.search_runs([self.experiment_id],
                                       filter_string=f"tags.`{TUNE_EXPERIMENT_TAG}` = '{tune_experiment}'",
                                       max_results=1)
        return runs[0].info.run_id if runs else None

    def open_parent(self, tune_experiment: str, params: dict, tags: dict, resume: bool) -> str:
        """Create the parent run, or on --resume reopen the one this Tune experiment created."""
        existing = self.find_parent(tune_experiment) if resume else None
        if existing:
            self.client.update_run(existing, status="RUNNING")
            self.parent_run_id = existing
            return existing
        all_tags = {TUNE_EXPERIMENT_TAG: tune_experiment, "sweep.command": " ".join(sys.argv),
                    "mlflow.source.name": "orchestration.sweep", **tags}
        commit = git_commit()
        if commit:
            all_tags["mlflow.source.git.commit"] = commit
        run = self.client.create_run(self.experiment_id, run_name=tune_experiment,
                                     tags={k: str(v) for k, v in all_tags.items()})
        self.parent_run_id = run.info.run_id
        log_params(self.client, self.parent_run_id, params)
        return self.parent_run_id

    def log_text(self, text: str, artifact_file: str) -> None:
        self.client.log_text(self.parent_run_id, text, artifact_file)

    def log_metrics(self, metrics: dict) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(k, float(v), now, 0) for k, v in metrics.items()]
        if items:
            self.client.log_batch(self.parent_run_id, metrics=items)

    def set_tag(self, key: str, value) -> None:
        self.client.set_tag(self.parent_run_id, key, str(value))

    def child_runs(self) -> list:
        return all_runs(self.client, [self.experiment_id], f"tags.`{PARENT_TAG}` = '{self.parent_run_id}'")

    def finalize_trials(self, outcomes: dict[str, str]) -> None:
        """The driver has the last word on each child run's status: only Tune knows whether a trial
        finished, was stopped early by the scheduler, failed, or was cut off by an interruption.
        `outcomes`: {trial id: finished | stopped early | error | interrupted}."""
        status = {"finished": "FINISHED", "stopped early": "FINISHED", "error": "FAILED", "interrupted": "KILLED"}
        for run in self.child_runs():
            outcome = outcomes.get(run.data.tags.get(TRIAL_TAG))
            if outcome is None:
                continue
            if outcome == "stopped early":
                self.client.set_tag(run.info.run_id, STOPPED_EARLY_TAG, "true")
            if run.info.status != status[outcome]:
                self.client.set_terminated(run.info.run_id, status=status[outcome])

    def close(self, status: str) -> None:
        if self.parent_run_id:
            self.client.set_terminated(self.parent_run_id, status=status)


class TrialRun:
    """Worker side: the child run of one trial, with buffered metric logging."""

    def __init__(self, context: TrackingContext, trial_id: str, trial_name: str, params: dict,
                 flush_every_s: float = 10.0, max_buffer: int = 500):
        self.client = _client(context.tracking_uri)
        self.flush_every_s, self.max_buffer = flush_every_s, max_buffer
        self._buffer: list = []
        self._last_flush = time.monotonic()
        found = call_with_retries(lambda: self.client.search_runs(
            [context.experiment_id],
            filter_string=f"tags.`{TRIAL_TAG}` = '{trial_id}' and tags.`{PARENT_TAG}` = '{context.parent_run_id}'",
            max_results=1), "finding the trial's run")
        if found:
            self.run_id = found[0].info.run_id
            self.resumed = True
            # FAILED: the last attempt raised; RUNNING: it died with its process or node; FINISHED: it died
            # after its last step but before Tune heard of it. Either way Tune is retrying this trial from
            # its last checkpoint (a --resume finds it KILLED instead).
            if found[0].info.status in ("FAILED", "RUNNING", "FINISHED"):
                retries = int(found[0].data.tags.get("sweep.retries", "0")) + 1
                call_with_retries(lambda: self.client.set_tag(self.run_id, "sweep.retries", str(retries)), "a tag")
            call_with_retries(lambda: self.client.update_run(self.run_id, status="RUNNING"), "the run's status")
            self.logged_through = call_with_retries(lambda: self._last_logged_step(found[0]), "the run's history")
            missing = {k: v for k, v in params.items() if k not in found[0].data.params}
            if missing:  # the first attempt created the run but lost its params in an outage
                call_with_retries(lambda: log_params(self.client, self.run_id, missing), "the trial's params")
        else:
            config = {k: params[k] for k in context.config_keys if k in params}
            tags = {PARENT_TAG: context.parent_run_id, TRIAL_TAG: trial_id, CONFIG_TAG: config_id(config)}
            if context.race and "seed" in params:
                from orchestration.verdict import round_of

                offset, first_seeds = context.race
                tags[RACE_ROUND_TAG] = str(round_of(int(params["seed"]) - offset, first_seeds))
            # a retried create_run whose first answer was lost would leave an empty run beside this one
            run = call_with_retries(
                lambda: self.client.create_run(context.experiment_id, run_name=trial_name, tags=tags),
                "creating the trial's run")
            self.run_id = run.info.run_id
            self.resumed = False
            self.logged_through = -1
            call_with_retries(lambda: log_params(self.client, self.run_id, params), "the trial's params")
        self.sender = BatchSender(lambda batch: self.client.log_batch(self.run_id, metrics=batch),
                                  what=f"logging metrics of run {self.run_id}")
        self.system = None
        if context.system_metrics_s:
            from orchestration.system_metrics import SystemMetrics

            self.system = SystemMetrics(self.run_id, context.tracking_uri, context.system_metrics_s, self.resumed)

    def system_metrics(self) -> dict[str, float]:
        """The trial's peak memory so far (empty when system metrics are off)."""
        return self.system.metrics() if self.system else {}

    def stop_system_metrics(self) -> None:
        if self.system is not None:
            system, self.system = self.system, None
            system.stop()

    def close(self) -> None:
        """Stop sampling system metrics and, once everything buffered is stored, the sender's thread."""
        self.stop_system_metrics()
        self.flush(wait=False)
        self.sender.close()

    def _last_logged_step(self, run) -> int:
        """The last iteration any metric of this run reached. A trial restored from a checkpoint older than
        its MLflow history (the newer checkpoint's write failed) repeats those steps and must not log
        them twice; deterministic training would log the same values again anyway. MLflow's system
        metrics (`system/...`) count their own samples as steps, not iterations, and are left out."""
        keys = [key for key in run.data.metrics if not key.startswith(SYSTEM_PREFIX)]
        steps = [m.step for key in keys for m in self.client.get_metric_history(self.run_id, key)]
        return max(steps, default=-1)

    def log_metrics(self, metrics: dict, step: int) -> None:
        """Buffer the values (timestamped now); a full or old buffer goes to the sender without waiting."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        for key, value in metrics.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                self._buffer.append(Metric(key, float(value), now, step))
        if len(self._buffer) >= self.max_buffer or time.monotonic() - self._last_flush >= self.flush_every_s:
            self.flush(wait=False)

    def flush(self, wait: bool = True) -> None:
        """Hand the buffer to the sender; with `wait`, return once MLflow holds everything logged so far
        (at every checkpoint and at the end, so a restored trial finds its history complete)."""
        while self._buffer:
            chunk, self._buffer = self._buffer[:MAX_BATCH], self._buffer[MAX_BATCH:]
            self.sender.submit(chunk)
        self._last_flush = time.monotonic()
        if wait:
            self.sender.flush()

    def log_params(self, params: dict) -> None:
        call_with_retries(lambda: log_params(self.client, self.run_id, params), "params")

    def set_tags(self, tags: dict) -> None:
        from mlflow.entities import RunTag

        if tags:
            batch = [RunTag(key, str(value)) for key, value in tags.items()]
            call_with_retries(lambda: self.client.log_batch(self.run_id, tags=batch), "tags")

    def log_artifacts(self, directory: Path, artifact_path: str | None = None) -> None:
        if any(Path(directory).iterdir()):
            call_with_retries(lambda: self.client.log_artifacts(self.run_id, str(directory), artifact_path),
                              "artifacts")

    def fail(self, error: BaseException) -> None:
        """Keep what was logged, record the error, and mark the run FAILED."""
        self.stop_system_metrics()
        self.flush()
        self.set_tags({"error": f"{type(error).__name__}: {error}"[:5000]})
        text = "".join(traceback.format_exception(error))
        call_with_retries(lambda: self.client.log_text(self.run_id, text, "error.txt"), "the error")
        call_with_retries(lambda: self.client.set_terminated(self.run_id, status="FAILED"), "the run's status")
        self.sender.close()

    def pause(self) -> None:
        """PBT paused the trial: everything sent, the run SCHEDULED until the trial continues."""
        self.stop_system_metrics()
        self.flush()
        call_with_retries(lambda: self.client.update_run(self.run_id, status="SCHEDULED"), "the run's status")
        self.sender.close()

    def record_exploit(self, source: dict, new_values: dict) -> None:
        """PBT restored this trial from another trial's checkpoint with mutated values: a tag per exploit,
        `pbt.exploit.<iteration>`, holding the source trial and run, and the old and new values."""
        record = {"iteration": source.get("iteration"), "from_trial": source.get("trial_id"),
                  "from_run": source.get("run_id"), "old": source.get("hyperparameters", {}), "new": new_values}
        self.set_tags({f"{EXPLOIT_TAG}.{source.get('iteration')}": json.dumps(record)})

    def finish(self, status: str = "FINISHED") -> None:
        self.stop_system_metrics()
        self.flush()
        call_with_retries(lambda: self.client.set_terminated(self.run_id, status=status), "the run's status")
        self.sender.close()
