"""Configurations -> pictures: `curves.png` (the sweep metric over iterations, the mean of each
configuration's seeds with a 95% band) and `by_<param>.png` (each configuration's mean with its
interval against one swept parameter, the seeds as points)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from orchestration.aggregate import t_interval
from orchestration.results.groups import Configuration
from orchestration.results.rows import SweepView


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


LABELLED = 10  # configurations named in a legend; a sweep of hundreds draws the rest unnamed


def curves(configs: list[Configuration], view: SweepView, path: Path) -> Path:
    """The first LABELLED configurations (the table's order: best first) in colour with their bands, any
    others as thin grey lines behind them."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for rank, config in enumerate(configs):
        by_step: dict[int, list[float]] = {}
        for run in config.runs:
            for step, value in run.history:
                by_step.setdefault(step, []).append(value)
        if not by_step:
            continue
        steps = sorted(by_step)
        means = [float(np.mean(by_step[s])) for s in steps]
        if rank >= LABELLED:
            ax.plot(steps, means, color="0.75", lw=0.5, zorder=1)
            continue
        line, = ax.plot(steps, means, marker="o", markersize=3, label=config.label(), zorder=3)
        bands = [t_interval(by_step[s]) for s in steps]
        if any(b is not None for b in bands):
            ax.fill_between(steps, [b.low if b else m for b, m in zip(bands, means)],
                            [b.high if b else m for b, m in zip(bands, means)], color=line.get_color(), alpha=0.15)
    ax.set_xlabel("iteration")
    ax.set_ylabel(view.metric_label)
    others = f"; {len(configs) - LABELLED} more in grey" if len(configs) > LABELLED else ""
    ax.set_title(f"{view.metric}: mean over seeds with 95% CI band{others}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def by_parameter(configs: list[Configuration], view: SweepView, key: str, path: Path) -> Path:
    """x: the parameter's value (numeric, or categories in order); one marker per configuration with its
    95% CI, coloured by the values of the other swept parameters. The verdict is paired, so each seed
    is a thin line across the configurations that share the other values: a line that slopes the same
    way for every seed is a difference the paired comparison sees, even where the intervals overlap."""
    plt = _pyplot()
    scored = [c for c in configs if c.mean is not None]
    values = [c.config.get(key) for c in scored]
    try:
        xs, labels = [float(v) for v in values], None
    except (TypeError, ValueError):
        labels = sorted(set(map(str, values)))
        xs = [float(labels.index(str(v))) for v in values]
    others = [k for k in view.config_keys if k != key]
    colours, labelled, lines = {}, set(), {}
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for config, x in zip(scored, xs):
        rest = ", ".join(f"{k}={config.config.get(k)}" for k in others) or config.label()
        colour = colours.setdefault(rest, f"C{len(colours) % 10}")
        for seed, value in config.scores.items():
            lines.setdefault((rest, seed), []).append((x, value))
        bar = config.interval
        ax.errorbar([x], [config.mean], yerr=[[config.mean - bar.low], [bar.high - config.mean]] if bar else None,
                    fmt="o", color=colour, capsize=4, label=None if rest in labelled else rest)
        labelled.add(rest)
    for (rest, _), points in lines.items():
        points.sort()
        ax.plot([p[0] for p in points], [p[1] for p in points], color=colours[rest], lw=0.8, alpha=0.4,
                marker=".", ms=4)
    if labels is not None:
        ax.set_xticks(range(len(labels)), labels)
    ax.set_xlabel(key)
    ax.set_ylabel(f"{view.metric_label} (final)")
    ax.set_title("mean over seeds with 95% CI; thin lines: one seed each")
    ax.grid(alpha=0.3)
    if others and len(colours) <= LABELLED:  # hundreds of combinations would bury the plot in a legend
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def all_plots(configs: list[Configuration], view: SweepView, directory: Path) -> list[Path]:
    directory = Path(directory)
    return [curves(configs, view, directory / "curves.png"),
            *(by_parameter(configs, view, key, directory / f"by_{key}.png") for key in view.config_keys)]
