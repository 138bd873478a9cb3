"""`python -m orchestration.report SWEEP`: rebuild a sweep's results table from MLflow alone.

Works for any past sweep (no Tune state needed): the parent run records the metric, mode and swept
parameters; each child run holds its params and metric history. The table is printed and, with
--log, written to the parent run as results/results.csv, results.md and comparison plots.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

from orchestration.errors import EXIT_USAGE, SweepError
from orchestration.summary import TrialRow, to_csv, to_markdown, to_text
from orchestration.tracking import PARENT_TAG, TRIAL_TAG, TUNE_EXPERIMENT_TAG, check_tracking_uri, resolve_tracking_uri

STATUS_TO_TUNE = {"FINISHED": "TERMINATED", "FAILED": "ERROR", "KILLED": "PENDING", "RUNNING": "RUNNING"}


@dataclass
class SweepView:
    """Enough of a SweepSpec for the table: metric, mode and swept keys, read from the parent run."""

    metric: str
    mode: str
    swept_keys: list[str]


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


def rows_from_mlflow(client, experiment_id: str, parent) -> tuple[SweepView, list[TrialRow]]:
    params = parent.data.params
    view = SweepView(metric=params["metric"], mode=params["mode"],
                     swept_keys=[k for k in params.get("swept", "-").split(",") if k and k != "-"])
    children = client.search_runs([experiment_id], filter_string=f"tags.`{PARENT_TAG}` = '{parent.info.run_id}'",
                                  max_results=10_000)
    rows = []
    for run in children:
        history = [m for m in client.get_metric_history(run.info.run_id, view.metric) if m.step > 0]
        values = [m.value for m in history]
        best = (min(values) if view.mode == "min" else max(values)) if values else None
        final = max(history, key=lambda m: (m.step, m.timestamp)).value if history else None
        end = run.info.end_time or run.info.start_time
        rows.append(TrialRow(
            name=run.info.run_name, trial_id=run.data.tags.get(TRIAL_TAG, ""),
            config={k: run.data.params.get(k) for k in view.swept_keys}, final=final, best=best,
            iterations=max((m.step for m in history), default=0),
            budget=int(run.data.params.get("iterations", 0) or 0), wall_s=(end - run.info.start_time) / 1000,
            run_id=run.info.run_id, status=STATUS_TO_TUNE.get(run.info.status, run.info.status)))
    sign = 1 if view.mode == "min" else -1
    rows.sort(key=lambda r: (r.final is None, sign * (r.final or 0.0), r.name))
    return view, rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m orchestration.report", description=__doc__.splitlines()[0])
    parser.add_argument("sweep", help="MLflow experiment name (the sweep name by default)")
    parser.add_argument("--run", help="parent run id (default: the latest sweep in the experiment)")
    parser.add_argument("--tracking-uri", help="default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db")
    parser.add_argument("--format", choices=("text", "markdown", "csv"), default="text")
    parser.add_argument("--log", action="store_true", help="also write the table to the parent run")
    args = parser.parse_args(argv)
    try:
        from mlflow.tracking import MlflowClient

        uri = resolve_tracking_uri(args.tracking_uri)
        check_tracking_uri(uri)
        client = MlflowClient(uri)
        experiment, parent = find_parent(client, args.sweep, args.run)
        view, rows = rows_from_mlflow(client, experiment.experiment_id, parent)
    except SweepError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    print({"text": to_text, "markdown": to_markdown, "csv": to_csv}[args.format](rows, view))
    if args.log:
        log_report(client, parent.info.run_id, view, rows)
    return 0



def comparison_plots(client, view: SweepView, rows: list[TrialRow], directory) -> list:
    """curves.png: the sweep metric of every trial over iterations; by_<param>.png: final metric against
    each swept parameter. Files are written to `directory`; returns their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from pathlib import Path

    directory = Path(directory)
    paths = []
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for row in rows:
        history = sorted((m.step, m.value) for m in client.get_metric_history(row.run_id, view.metric) if m.step > 0)
        if history:
            label = ", ".join(f"{k}={v}" for k, v in row.config.items()) or row.name
            ax.plot(*zip(*history), marker="o", markersize=3, label=label)
    ax.set_xlabel("iteration")
    ax.set_ylabel(view.metric)
    ax.set_title(f"{view.metric} of every trial")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    paths.append(directory / "curves.png")
    fig.savefig(paths[-1], dpi=100)
    plt.close(fig)

    scored = [r for r in rows if r.final is not None]
    paths += seed_aggregate(view, scored, directory)
    for key in view.swept_keys:
        values = [r.config[key] for r in scored]
        try:
            xs, categorical = [float(v) for v in values], False
        except (TypeError, ValueError):
            labels = sorted(set(map(str, values)))
            xs, categorical = [labels.index(str(v)) for v in values], True
        fig, ax = plt.subplots(figsize=(5, 4))
        ax.scatter(xs, [r.final for r in scored])
        if categorical:
            ax.set_xticks(range(len(labels)), labels)
        ax.set_xlabel(key)
        ax.set_ylabel(f"{view.metric} (final)")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        paths.append(directory / f"by_{key}.png")
        fig.savefig(paths[-1], dpi=100)
        plt.close(fig)
    return paths


def log_table(client, parent_run_id: str, view, rows: list[TrialRow]) -> None:
    """results/results.csv and results/results.md in the parent run (`view`: a SweepView or SweepSpec)."""
    client.log_text(parent_run_id, to_csv(rows, view), "results/results.csv")
    client.log_text(parent_run_id, to_markdown(rows, view), "results/results.md")


def log_plots(client, parent_run_id: str, view, rows: list[TrialRow]) -> None:
    """The comparison plots, from the runs' MLflow histories, into the parent run's results/."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        for path in comparison_plots(client, view, rows, tmp):
            client.log_artifact(parent_run_id, str(path), "results")


def log_report(client, parent_run_id: str, view: SweepView, rows: list[TrialRow]) -> None:
    """Write the table and the comparison plots to the parent run under results/."""
    log_table(client, parent_run_id, view, rows)
    log_plots(client, parent_run_id, view, rows)


def seed_aggregate(view: SweepView, rows: list[TrialRow], directory) -> list:
    """For sweeps over `seed`: aggregate.md and aggregate.png, the IQM over seeds with its interval (a 95%
    bootstrap CI from 5 seeds on, the range below that)."""
    if "seed" not in view.swept_keys:
        return []
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from pathlib import Path

    from orchestration.aggregate import aggregate_over_seeds, to_markdown as aggregate_markdown

    entries = aggregate_over_seeds(rows, view.swept_keys)
    if not entries:
        return []
    directory = Path(directory)
    (directory / "aggregate.md").write_text(aggregate_markdown(entries, view.metric))
    labels = [", ".join(f"{k}={v}" for k, v in e["config"].items()) or "all" for e in entries]
    fig, ax = plt.subplots(figsize=(6, 0.5 * len(entries) + 1.5))
    ax.errorbar([e["iqm"] for e in entries], range(len(entries)), fmt="o",
                xerr=[[e["iqm"] - e["low"] for e in entries], [e["high"] - e["iqm"] for e in entries]])
    ax.set_yticks(range(len(entries)), labels, fontsize=7)
    kinds = " / ".join(sorted({e["interval"] for e in entries}))
    ax.set_xlabel(f"IQM of final {view.metric} over seeds ({kinds})")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(directory / "aggregate.png", dpi=100)
    plt.close(fig)
    return [directory / "aggregate.md", directory / "aggregate.png"]


if __name__ == "__main__":
    sys.exit(main())
