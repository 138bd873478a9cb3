"""What population-based training did, rebuilt from MLflow alone: `results/pbt_lineage.csv` (one row
per exploit and mutated parameter: which trial took whose checkpoint at which iteration, old and new
value) and `results/pbt_schedules.png` (each trial's hp/<name> over iterations, coloured by its final
score). The end of a PBT sweep and `python -m orchestration.report --log` both write them."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from orchestration.results.rows import RunRow, SweepView
from orchestration.tracking import EXPLOIT_TAG, HP_PREFIX


def exploits(run) -> list[dict]:
    """The exploit records of one MLflow run, by iteration."""
    records = [json.loads(v) for k, v in run.data.tags.items() if k.startswith(f"{EXPLOIT_TAG}.")]
    return sorted(records, key=lambda r: r.get("iteration") or 0)


def lineage_csv(client, rows: list[RunRow]) -> str | None:
    """None when no run holds an exploit (not a PBT sweep, or nothing was exploited yet)."""
    out, body = io.StringIO(), []
    for row in rows:
        for record in exploits(client.get_run(row.run_id)):
            for key in sorted(set(record.get("old", {})) | set(record.get("new", {}))):
                body.append([row.name, row.trial_id, row.run_id, record.get("iteration"), record.get("from_trial"),
                             record.get("from_run"), key, record.get("old", {}).get(key),
                             record.get("new", {}).get(key)])
    if not body:
        return None
    writer = csv.writer(out)
    writer.writerow(["trial", "trial_id", "mlflow_run_id", "iteration", "from_trial_id", "from_run_id", "parameter",
                     "old", "new"])
    writer.writerows(sorted(body, key=lambda r: (r[3], r[1], r[6])))
    return out.getvalue()


def schedules(client, rows: list[RunRow]) -> dict[str, dict[str, list[tuple[int, float]]]]:
    """{run id: {parameter: [(iteration, live value)]}} for every hp/<name> a run logged."""
    out = {}
    for row in rows:
        history = {k: client.get_metric_history(row.run_id, HP_PREFIX + k) for k in row.final_hyperparameters}
        out[row.run_id] = {k: sorted((m.step, m.value) for m in h) for k, h in history.items()}
    return out


def schedule_plot(client, rows: list[RunRow], view: SweepView, path: Path) -> Path | None:
    """One panel per mutated parameter; one line per trial, coloured by its final sweep metric (the
    colour bar says which end is better)."""
    from orchestration.results.plots import _pyplot

    series = schedules(client, rows)
    keys = sorted({k for per_run in series.values() for k in per_run})
    if not keys:
        return None
    plt = _pyplot()
    import matplotlib as mpl

    scored = [r.final for r in rows if r.final is not None]
    norm = mpl.colors.Normalize(min(scored, default=0), max(scored, default=1))
    cmap = mpl.colormaps["viridis" if view.mode == "max" else "viridis_r"]
    fig, axes = plt.subplots(len(keys), 1, figsize=(7, 2.6 * len(keys)), squeeze=False, sharex=True)
    for ax, key in zip(axes[:, 0], keys):
        for row in rows:
            points = series[row.run_id].get(key)
            if points:
                colour = cmap(norm(row.final)) if row.final is not None else "grey"
                ax.step([s for s, _ in points], [v for _, v in points], where="post", color=colour, alpha=0.8)
        ax.set_ylabel(key)
        if key in ("lr", "temperature", "weight_decay"):
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("iteration")
    fig.colorbar(mpl.cm.ScalarMappable(norm=norm, cmap=cmap), ax=axes[:, 0].tolist(),
                 label=f"{view.metric} (final; {'higher' if view.mode == 'max' else 'lower'} is better: yellow)")
    fig.suptitle("PBT: each trial's hyperparameter schedule")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def publish(client, parent_run_id: str, rows: list[RunRow], view: SweepView, directory: Path) -> list[str]:
    """Log the lineage CSV and the schedule plot to the parent run; returns what was logged."""
    logged = []
    text = lineage_csv(client, rows)
    if text is not None:
        client.log_text(parent_run_id, text, "results/pbt_lineage.csv")
        logged.append("results/pbt_lineage.csv")
    plot = schedule_plot(client, rows, view, Path(directory) / "pbt_schedules.png")
    if plot is not None:
        client.log_artifact(parent_run_id, str(plot), "results")
        logged.append("results/pbt_schedules.png")
    return logged
