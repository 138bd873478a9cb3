"""Runs -> rows: one row per trial, read from MLflow alone (the parent run records the metric, mode,
swept parameters and seeds; each child run holds its params, tags and metric history).

The end of a sweep reads the same rows as `python -m orchestration.report`, after it has written
Tune's verdict on each trial (finished, stopped early, failed, interrupted) into the runs' status.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field

from orchestration.errors import SweepError
from orchestration.search_space import SEED, config_id
from orchestration.system_metrics import PEAK_RSS
from orchestration.tracking import (CONFIG_TAG, HP_PREFIX, PARENT_TAG, STOPPED_EARLY_TAG, TRIAL_TAG,
                                    TUNE_EXPERIMENT_TAG, all_runs)

OUTCOMES = {"FINISHED": "finished", "FAILED": "error", "KILLED": "interrupted", "RUNNING": "running"}


@dataclass
class SweepView:
    """What the results need to know about a sweep, read from its parent run."""

    metric: str
    mode: str
    swept_keys: list[str]
    scheduler: str = "fifo"  # under "pbt" a trial's swept values are where it started, not what it trained with
    measurement: dict = field(default_factory=dict)  # {parameter: value} that set how the metric was measured
    race: dict | None = None  # a raced sweep: {first_seeds, max_seeds, alpha, seeds (in race order)}
    slots: int = 1  # the trials the sweep could run at once (the parent param trial_slots)

    @property
    def metric_label(self) -> str:
        """The metric with how it was measured, e.g. "eval/fid (eval_samples=500)"."""
        how = ", ".join(f"{k}={v}" for k, v in self.measurement.items())
        return f"{self.metric} ({how})" if how else self.metric

    @property
    def config_keys(self) -> list[str]:
        return [k for k in self.swept_keys if k != SEED]

    def better(self, a: float, b: float) -> bool:
        return a < b if self.mode == "min" else a > b


@dataclass
class RunRow:
    name: str
    run_id: str
    trial_id: str
    config_id: str
    config: dict  # swept values without the seed, as MLflow holds them (text)
    seed: int | None
    final: float | None  # the sweep metric at the last iteration that logged it
    best: float | None
    own_interval: tuple[float, float] | None  # the run's own evaluation interval of `final`, if it logs one
    iterations: int
    budget: int
    wall_s: float
    outcome: str  # finished | stopped early | error | interrupted | running
    peak_rss_mb: float | None = None  # the trial process's peak resident memory (system metrics)
    history: list[tuple[int, float]] = field(default_factory=list)  # (iteration, metric)
    final_hyperparameters: dict = field(default_factory=dict)  # PBT: the last hp/<name> values
    diverged: bool = False  # ran its whole budget and ended on a non-finite metric (NaN, inf)
    start_s: float = 0.0  # when its run started (epoch seconds)

    @property
    def replicate(self):
        """What pairs this run with other configurations' runs: its seed, or its run id when it has none
        (then it pairs with nothing)."""
        return self.seed if self.seed is not None else self.run_id

    @property
    def scored(self) -> bool:
        """Ran its whole budget and has a finite result: comparable with the others."""
        return self.outcome == "finished" and self.final is not None


def find_parent(client, experiment_name: str, parent_run_id: str | None = None):
    experiment = client.get_experiment_by_name(experiment_name)
    if experiment is None:
        raise SweepError(f"no MLflow experiment named {experiment_name!r}")
    if parent_run_id:
        return experiment, client.get_run(parent_run_id)
    parents = client.search_runs([experiment.experiment_id], filter_string=f"tags.`{TUNE_EXPERIMENT_TAG}` != ''",
                                 order_by=["attributes.start_time DESC"], max_results=1)
    if not parents:
        raise SweepError(f"experiment {experiment_name!r} holds no sweep parent run")
    return experiment, parents[0]


def _number(value) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


HISTORY_THREADS = 8  # a tracking server answers one history per request: a sweep of 1,000 runs asks 3,000


def latest_metrics(run) -> dict[str, tuple[int, float]]:
    """{metric: (step, value)} of its latest value, as the search returned the run (no request)."""
    return {m.key: (m.step, m.value) for m in run.data.to_proto().metrics}


def metric_histories(client, runs: list, key: str, latest: dict[str, dict]) -> dict[str, list[tuple[int, float]]]:
    """{run id: [(step, value)] of `key`, steps > 0}, fetched in parallel, and only for runs that logged it
    after step 1: up to step 1 the latest value the search returned is the whole history (each step is
    logged once), which spares a request per run in sweeps of one-iteration trials. `latest`: {run id:
    latest_metrics(run)}."""
    from concurrent.futures import ThreadPoolExecutor

    histories, fetch = {}, []
    for run in runs:
        step, value = latest[run.info.run_id].get(key, (None, None))
        if step is None:
            histories[run.info.run_id] = []
        elif step <= 1:
            histories[run.info.run_id] = [(step, value)] if step == 1 else []
        else:
            fetch.append(run.info.run_id)
    with ThreadPoolExecutor(HISTORY_THREADS) as pool:
        fetched = pool.map(lambda run_id: client.get_metric_history(run_id, key), fetch)
        for run_id, history in zip(fetch, fetched):
            histories[run_id] = [(m.step, m.value) for m in history if m.step > 0]
    return histories


def load_rows(client, experiment_id: str, parent) -> tuple[SweepView, list[RunRow]]:
    """The sweep's view and one row per child run."""
    params = parent.data.params
    view = SweepView(metric=params["metric"], mode=params["mode"],
                     swept_keys=[k for k in params.get("swept", "-").split(",") if k and k != "-"],
                     scheduler=params.get("scheduler", "fifo"), race=json.loads(params.get("race", "null")),
                     slots=int(params.get("trial_slots", "1")))
    children = all_runs(client, [experiment_id], f"tags.`{PARENT_TAG}` = '{parent.info.run_id}'")
    measured_with = _measured_with(params.get("family") or parent.data.tags.get("sweep.family"), view.metric)
    measured = {key: set() for key in measured_with}
    children = [run for run in children if TRIAL_TAG in run.data.tags]  # not e.g. a `use` run under the sweep
    ci_keys = (f"{view.metric}_ci_low", f"{view.metric}_ci_high")
    latest = {run.info.run_id: latest_metrics(run) for run in children}
    histories = metric_histories(client, children, view.metric, latest)
    rows = []
    for run in children:
        run_id, tags = run.info.run_id, run.data.tags
        for key in measured_with:
            measured[key].add(run.data.params.get(key, "?"))
        history = sorted(histories[run_id])
        values = [v for _, v in history if math.isfinite(v)]
        final_step = history[-1][0] if history else 0
        # the interval of the final value: logged with it, so the latest of each at the same step
        ends = latest[run_id]
        low, high = (_number(ends[key][1]) if history and ends.get(key, (None,))[0] == final_step else None
                     for key in ci_keys)
        config = {k: run.data.params.get(k) for k in view.config_keys}
        outcome = OUTCOMES.get(run.info.status, run.info.status.lower())
        if outcome == "finished" and tags.get(STOPPED_EARLY_TAG) == "true":
            outcome = "stopped early"
        end = run.info.end_time or run.info.start_time
        seed = run.data.params.get(SEED)
        rows.append(RunRow(
            name=run.info.run_name, run_id=run_id, trial_id=tags.get(TRIAL_TAG, ""),
            config_id=tags.get(CONFIG_TAG) or config_id(config), config=config,
            seed=int(seed) if seed is not None and SEED in view.swept_keys else None,
            final=_number(history[-1][1]) if history else None,
            best=(min(values) if view.mode == "min" else max(values)) if values else None,
            own_interval=(low, high) if low is not None and high is not None else None,
            iterations=final_step, budget=int(run.data.params.get("iterations", 0) or 0),
            wall_s=(end - run.info.start_time) / 1000, outcome=outcome, start_s=run.info.start_time / 1000,
            peak_rss_mb=_number(run.data.metrics.get(PEAK_RSS)), history=history,
            final_hyperparameters={k[len(HP_PREFIX):]: v for k, v in run.data.metrics.items()
                                   if k.startswith(HP_PREFIX)},
            diverged=outcome == "finished" and bool(history) and not math.isfinite(history[-1][1])))
    for key, values in measured.items():
        if len(values) > 1:
            raise SweepError(f"the runs of this sweep measured {view.metric} with different {key} "
                             f"({', '.join(sorted(values))}); it depends on how it is measured, so they cannot be "
                             "ranked against each other")
        view.measurement.update({key: value for value in values})
    return view, sorted(rows, key=lambda r: r.name)


def _measured_with(family_name: str | None, metric: str) -> tuple[str, ...]:
    """The parameters that set how the family measures `metric` (none for an unknown family)."""
    from orchestration.family import load_family

    try:
        return load_family(family_name).measured_with.get(metric, ()) if family_name else ()
    except SweepError:
        return ()


def tune_outcomes(experiment_path: str, budget_of, filesystem=None) -> dict[str, str]:
    """Tune's verdict on each trial, from the state it saved: finished | stopped early | error |
    interrupted. After Ctrl-C Tune marks every trial TERMINATED in memory but saves unfinished ones as
    PENDING first, so only the saved state tells finished from interrupted. `budget_of(config)`
    gives a trial's iteration budget; `filesystem` is the storage's (an object store's path has no scheme)."""
    from ray.tune import ExperimentAnalysis

    class SavedStates(ExperimentAnalysis):
        """Only the experiment's state file: each trial's status and last result are in it. Tune's analysis
        would also read every trial's result files, one request each on an object store (a 100-trial sweep
        on S3 spent most of its 29 s ending there)."""

        def _fetch_trial_dataframes(self):
            return {}

    quiet = logging.getLogger("ray.tune.analysis.experiment_analysis")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # trials that never reported have no result files; that is expected
    try:
        analysis = SavedStates(experiment_path, storage_filesystem=filesystem)
    finally:
        quiet.setLevel(level)
    outcomes = {}
    for trial in analysis.trials:
        if trial.status == "TERMINATED":
            iterations = int((trial.last_result or {}).get("training_iteration", 0) or 0)
            outcomes[trial.trial_id] = "stopped early" if iterations < budget_of(trial.config) else "finished"
        else:
            outcomes[trial.trial_id] = "error" if trial.status == "ERROR" else "interrupted"
    return outcomes
