"""End-of-sweep summary: a results table (terminal, CSV, Markdown) and the best trial."""

from __future__ import annotations

import csv
import io
import logging
import math
from dataclasses import dataclass
from urllib.parse import urlparse

from orchestration.search_space import SweepSpec


@dataclass
class TrialRow:
    name: str
    trial_id: str
    config: dict
    final: float | None
    best: float | None
    iterations: int
    budget: int
    wall_s: float
    run_id: str
    status: str

    @property
    def stopped_early(self) -> bool:
        return self.status == "TERMINATED" and self.iterations < self.budget

    @property
    def outcome(self) -> str:
        """finished | stopped early (by the scheduler) | error | interrupted (resume to continue)."""
        if self.status == "TERMINATED":
            return "stopped early" if self.stopped_early else "finished"
        return "error" if self.status == "ERROR" else "interrupted"


def _number(value) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) else value


def load_analysis(experiment_path: str):
    """The experiment as Tune saved it. After Ctrl-C, Tune marks every trial TERMINATED in memory but
    saves unfinished ones as PENDING first, so only the saved state tells finished from interrupted."""
    from ray.tune import ExperimentAnalysis

    quiet = logging.getLogger("ray.tune.analysis.experiment_analysis")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # trials that never reported have no result files; that is expected
    try:
        return ExperimentAnalysis(experiment_path)
    finally:
        quiet.setLevel(level)


def collect_rows(analysis, spec: SweepSpec) -> list[TrialRow]:
    """One row per trial: swept config, final and best value of the sweep metric, MLflow run, Tune status."""
    rows = []
    for trial in analysis.trials:
        metrics = trial.last_result or {}
        history = analysis.trial_dataframes.get(trial.trial_id)
        best = None
        if history is not None and spec.metric in history:
            series = history[spec.metric].dropna()
            if len(series):
                best = float(series.min() if spec.mode == "min" else series.max())
        rows.append(TrialRow(
            name=str(trial), trial_id=trial.trial_id, config={k: trial.config.get(k) for k in spec.swept_keys},
            final=_number(metrics.get(spec.metric)), best=best,
            iterations=int(metrics.get("training_iteration", 0) or 0),
            budget=int(spec.family.resolve(trial.config)[spec.family.budget_param]),
            wall_s=float(metrics.get("time_total_s", 0.0) or 0.0), run_id=metrics.get("mlflow_run_id", ""),
            status=trial.status))
    sign = 1 if spec.mode == "min" else -1
    return sorted(rows, key=lambda r: (r.final is None, sign * (r.final or 0.0), r.name))


def _fmt(value) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def table(rows: list[TrialRow], spec: SweepSpec) -> tuple[list[str], list[list[str]]]:
    header = [*spec.swept_keys, f"{spec.metric} (final)", f"{spec.metric} (best)", "iterations", "wall_s",
              "status", "mlflow_run_id"]
    body = [[*(_fmt(r.config[k]) for k in spec.swept_keys), _fmt(r.final), _fmt(r.best), str(r.iterations),
             f"{r.wall_s:.1f}", r.outcome, r.run_id] for r in rows]
    return header, body


def to_csv(rows: list[TrialRow], spec: SweepSpec) -> str:
    header, body = table(rows, spec)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(body)
    return out.getvalue()


def to_markdown(rows: list[TrialRow], spec: SweepSpec) -> str:
    header, body = table(rows, spec)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines) + "\n"


def to_text(rows: list[TrialRow], spec: SweepSpec) -> str:
    header, body = table(rows, spec)
    header, body = header[:-1], [row[:-1] for row in body]  # run ids are printed with the best trial
    widths = [max(len(h), *(len(row[i]) for row in body)) if body else len(h) for i, h in enumerate(header)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join([fmt.format(*header), fmt.format(*("-" * w for w in widths)), *(fmt.format(*r) for r in body)])


def ui_hint(tracking_uri: str, experiment_id: str, run_id: str | None = None) -> str:
    """How to look at the sweep: a URL for a server, the `mlflow ui` command for a local store."""
    if urlparse(tracking_uri).scheme in ("http", "https"):
        url = f"{tracking_uri.rstrip('/')}/#/experiments/{experiment_id}"
        return f"open {url}" + (f"/runs/{run_id}" if run_id else "")
    return f"mlflow ui --backend-store-uri {tracking_uri}  # then open http://127.0.0.1:5000"
