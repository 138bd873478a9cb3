"""A raced sweep's record in its parent run: `results/race.csv` (every configuration at every look: its
seeds so far, mean, difference to the best with the look's interval, and when and why it left) and
`results/race.png` (the shrinking set). Both come from the race replayed over the MLflow runs
(`groups.replay_race`), the same replay the results table judges with."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from orchestration.results.groups import Configuration, replay_race
from orchestration.results.rows import SweepView

HEADER = ["round", "seeds so far", "configuration", "config_id", "mean", "difference to best", "low", "high",
          "eliminated at", "reason"]


def race_rows(configs: list[Configuration], view: SweepView) -> list[list[str]]:
    """One row per configuration still in the race at each look."""
    race = replay_race(configs, view)
    labels = {c.config_id: c.label() for c in configs}
    rows = []
    for round_ in race.rounds:
        for config_id in round_.alive:
            comparison = round_.comparisons.get(config_id)
            mean = round_.means.get(config_id)
            out = race.eliminated.get(config_id)
            rows.append([str(round_.number), str(round_.seeds), labels[config_id], config_id,
                         "" if mean is None else f"{mean:.8g}",
                         "0" if config_id == round_.best
                         else "" if comparison is None else f"{comparison.difference:.8g}",
                         "" if comparison is None else f"{comparison.low:.8g}",
                         "" if comparison is None else f"{comparison.high:.8g}",
                         str(out[0]) if out and out[0] == round_.number else "",
                         out[1] if out and out[0] == round_.number else ""])
    return rows


def to_csv(configs: list[Configuration], view: SweepView) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(HEADER)
    writer.writerows(race_rows(configs, view))
    return out.getvalue()


def plot(configs: list[Configuration], view: SweepView, path: Path) -> Path:
    """Each configuration as a bar over the rounds it stayed in; survivors dark, the eliminated light."""
    from orchestration.results.plots import _pyplot

    race = replay_race(configs, view)
    plt = _pyplot()
    labels = {c.config_id: c.label() for c in configs}
    last = {c: r.number for r in race.rounds for c in r.alive}
    order = sorted(last, key=lambda c: (-last[c], labels[c]))
    fig, ax = plt.subplots(figsize=(7, 0.9 + 0.35 * max(1, len(order))))
    for y, config_id in enumerate(order):
        survived = config_id in race.alive
        ax.barh(y, last[config_id], left=0.5, color="tab:green" if survived else "lightgray", edgecolor="gray")
        if not survived:
            ax.text(last[config_id] + 0.55, y, race.eliminated[config_id][1], va="center", fontsize=7)
    seeds = {r.number: r.seeds for r in race.rounds}
    ax.set_yticks(range(len(order)), [labels[c] for c in order], fontsize=7)
    ax.set_xticks(list(seeds), [f"{n}\n({seeds[n]} seeds)" for n in seeds], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("round")
    ax.set_title(f"race on {view.metric_label}: {len(race.alive)} of {len(order)} left", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
