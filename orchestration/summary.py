"""End-of-sweep summary: a results table (terminal, CSV, Markdown) and the best trial."""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from urllib.parse import urlparse

from orchestration.search_space import SweepSpec


@dataclass
class TrialRow:
    name: str
    config: dict
    final: float | None
    best: float | None
    iterations: int
    wall_s: float
    run_id: str
    status: str


def _number(value) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) else value


def collect_rows(result_grid, spec: SweepSpec) -> list[TrialRow]:
    """One row per trial: swept config, final and best value of the sweep metric, MLflow run."""
    rows = []
    for result in result_grid:
        metrics = result.metrics or {}
        history = result.metrics_dataframe
        best = None
        if history is not None and spec.metric in history:
            series = history[spec.metric].dropna()
            if len(series):
                best = float(series.min() if spec.mode == "min" else series.max())
        rows.append(TrialRow(
            name=metrics.get("trial_id", ""), config={k: result.config.get(k) for k in spec.swept_keys},
            final=_number(metrics.get(spec.metric)), best=best,
            iterations=int(metrics.get("training_iteration", 0) or 0),
            wall_s=float(metrics.get("time_total_s", 0.0) or 0.0), run_id=metrics.get("mlflow_run_id", ""),
            status="ERROR" if result.error else "OK"))
    sign = 1 if spec.mode == "min" else -1
    return sorted(rows, key=lambda r: (r.final is None, sign * (r.final or 0.0)))


def _fmt(value) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def table(rows: list[TrialRow], spec: SweepSpec) -> tuple[list[str], list[list[str]]]:
    header = [*spec.swept_keys, f"{spec.metric} (final)", f"{spec.metric} (best)", "iterations", "wall_s",
              "status", "mlflow_run_id"]
    body = [[*(_fmt(r.config[k]) for k in spec.swept_keys), _fmt(r.final), _fmt(r.best), str(r.iterations),
             f"{r.wall_s:.1f}", r.status, r.run_id] for r in rows]
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
