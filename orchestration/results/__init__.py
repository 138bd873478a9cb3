"""One path from a sweep's runs to its answer, used by the end of a sweep and by
`python -m orchestration.report` alike:

    MLflow child runs -> rows (`rows`) -> configurations with intervals and a tied-with-best flag
    (`groups`) -> terminal, CSV and Markdown (`render`) and plots (`plots`) -> the parent run (`publish`).
"""

from __future__ import annotations

import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from orchestration.results.groups import Configuration, configurations, tied_set
from orchestration.results.rows import RunRow, SweepView, load_rows


@dataclass
class Results:
    view: SweepView
    rows: list[RunRow]
    configs: list[Configuration]

    @property
    def best(self) -> Configuration | None:
        return self.configs[0] if self.configs and self.configs[0].mean is not None else None


def load_results(client, experiment_id: str, parent) -> Results:
    view, rows = load_rows(client, experiment_id, parent)
    return Results(view, rows, configurations(rows, view))


def publish(client, parent_run_id: str, results: Results) -> None:
    """results/results.md and .csv (configurations), results/runs.csv (every run), the plots, and the
    answer as tags and a metric of the parent run."""
    from mlflow.entities import Metric

    from orchestration.results import pbt, plots, render

    view = results.view
    client.log_text(parent_run_id, render.to_csv(results.configs, view), "results/results.csv")
    client.log_text(parent_run_id, render.to_markdown(results.configs, view), "results/results.md")
    client.log_text(parent_run_id, render.runs_csv(results.rows, view), "results/runs.csv")
    if view.race:
        from orchestration.results import race

        client.log_text(parent_run_id, race.to_csv(results.configs, view), "results/race.csv")
    best = results.best
    if best is not None:
        client.log_batch(parent_run_id, metrics=[Metric(f"best/{view.metric}", best.mean, 0, 0)])
        tags = {"sweep.best_config_id": best.config_id, "sweep.best_run_id": best.best_run.run_id,
                "sweep.tied_config_ids": ",".join(c.config_id for c in tied_set(results.configs)),
                **{f"sweep.best.{k}": v for k, v in best.config.items()}}
        for key, value in tags.items():
            client.set_tag(parent_run_id, key, str(value))
    try:
        with tempfile.TemporaryDirectory() as tmp:
            paths = plots.all_plots(results.configs, view, Path(tmp))
            if view.race:
                from orchestration.results import race

                paths.append(race.plot(results.configs, view, Path(tmp) / "race.png"))
            for path in paths:
                client.log_artifact(parent_run_id, str(path), "results")
            if view.scheduler == "pbt":  # its lineage reads every run once more
                pbt.publish(client, parent_run_id, results.rows, view, Path(tmp))
    except Exception as err:  # a plotting problem must not cost the sweep its tables
        print(f"[results] warning: plots failed: {err}", file=sys.stderr)
