"""Configurations -> text: the terminal table, CSV and Markdown, the per-run table and the sweep's
answer in a few lines. Renderers only format; every number comes from `groups`."""

from __future__ import annotations

import csv
import io
from urllib.parse import urlparse

from orchestration.results.groups import Configuration, compared_on, single_seed, tied_set
from orchestration.results.rows import RunRow, SweepView
from orchestration.search import SCHEDULERS


def _fmt(value, digits: int = 4) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}g}" if isinstance(value, float) else str(value)


def _interval_cell(config: Configuration, digits: int) -> str:
    """The 95% CI over seeds; with one seed, the run's own evaluation interval where it logs one."""
    if config.interval is not None:
        return f"[{config.interval.low:.{digits}g}, {config.interval.high:.{digits}g}]"
    run = config.best_run
    if run is not None and run.own_interval is not None:
        return f"[{run.own_interval[0]:.{digits}g}, {run.own_interval[1]:.{digits}g}] (run)"
    return "-"


def _tied_cell(config: Configuration) -> str:
    if config.diverged_seeds:
        return "diverged"
    if config.is_best:
        return "best"
    if config.out is not None:
        return f"no (out in round {config.out[0]})"
    return {True: "yes", False: "no", None: "?"}[config.tied] if config.mean is not None else "-"


def _peak_cell(config: Configuration) -> str:
    """The largest peak resident memory of the configuration's trial processes, in MB."""
    peaks = [r.peak_rss_mb for r in config.runs if r.peak_rss_mb is not None]
    return f"{max(peaks):.0f}" if peaks else "-"


def table(configs: list[Configuration], view: SweepView,
          digits: int = 4) -> tuple[list[str], list[list[str]]]:
    """One row per configuration; numbers to `digits` significant digits (more in CSV files)."""
    header = [*view.config_keys, "seeds", f"{view.metric_label} mean", "IQM", "95% CI", "tied with best",
              "finished", "wall s", "peak MB", "config_id"]
    body = [[*(_fmt(c.config.get(k)) for k in view.config_keys), str(c.n), _fmt(c.mean, digits),
             _fmt(c.iqm, digits), _interval_cell(c, digits), _tied_cell(c),
             f"{sum(r.outcome == 'finished' for r in c.runs)}/{len(c.runs)}",
             f"{sum(r.wall_s for r in c.runs) / len(c.runs):.1f}", _peak_cell(c), c.config_id] for c in configs]
    return header, body


def to_csv(configs: list[Configuration], view: SweepView) -> str:
    return _csv(*table(configs, view, digits=8))


def to_markdown(configs: list[Configuration], view: SweepView) -> str:
    header, body = table(configs, view)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines) + "\n\n" + "\n".join(answer(configs, view)) + "\n"


def to_text(configs: list[Configuration], view: SweepView) -> str:
    header, body = table(configs, view)
    header, body = header[:-1], [row[:-1] for row in body]  # config ids are for files, not the terminal
    widths = [max(len(h), *(len(row[i]) for row in body)) if body else len(h) for i, h in enumerate(header)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join([fmt.format(*header), fmt.format(*("-" * w for w in widths)), *(fmt.format(*r) for r in body)])


def runs_csv(rows: list[RunRow], view: SweepView) -> str:
    """Every run: its configuration, seed, final and best metric, own interval, iterations and status."""
    header = [*view.config_keys, "seed", f"{view.metric_label} (final)", f"{view.metric_label} (best)", "own CI low",
              "own CI high", "iterations", "wall_s", "peak_rss_mb", "status", "config_id", "mlflow_run_id"]
    body = [[*(_fmt(r.config.get(k)) for k in view.config_keys), _fmt(r.seed), _fmt(r.final, 8), _fmt(r.best, 8),
             _fmt(r.own_interval[0] if r.own_interval else None, 8),
             _fmt(r.own_interval[1] if r.own_interval else None, 8), str(r.iterations), f"{r.wall_s:.1f}",
             _fmt(r.peak_rss_mb, 6), r.outcome,
             r.config_id, r.run_id] for r in rows]
    return _csv(header, body)


def _csv(header: list[str], body: list[list[str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(body)
    return out.getvalue()


def answer(configs: list[Configuration], view: SweepView) -> list[str]:
    """The sweep's answer: the best configuration, the set tied with it, and how sure that is."""
    scored = [c for c in configs if c.mean is not None]
    if not scored:
        return ["no configuration finished its budget with a finite result: there is no answer",
                *diverged_lines(configs)]
    best = scored[0]
    own = SCHEDULERS[view.scheduler].answer(best, view) if view.scheduler in SCHEDULERS else None
    if own is not None:  # a scheduler whose trials are not replicates (PBT) reads its results its own way
        return own
    lines = [f"best configuration: {best.label()}: {view.metric_label} {best.mean:.4g}"
             + (f", 95% CI [{best.interval.low:.4g}, {best.interval.high:.4g}] over {best.n} seeds"
                if best.interval else ""),
             f"  its best run: MLflow run {best.best_run.run_id}"
             + (f" (seed {best.best_run.seed})" if best.best_run.seed is not None else "")]
    if single_seed(configs):
        lines.append("one seed per configuration: this ranking carries no uncertainty estimate, and a re-run "
                     "with other seeds may order it differently; run with --seeds 3 (or `seeds: 3`) to know")
        run = best.best_run
        if run.own_interval is not None:
            lines.append(f"  the best run's own evaluation interval: [{run.own_interval[0]:.4g}, "
                         f"{run.own_interval[1]:.4g}] (evaluation noise only, not seed-to-seed variation)")
        return lines + diverged_lines(configs)
    seeds = compared_on(scored)
    if set(seeds) != set(best.scores) and not view.race:
        lines.append(f"chosen and compared on the seeds every ranked configuration finished: "
                     f"{', '.join(map(str, seeds)) or 'none'}")
    tied = [c for c in tied_set(configs) if not c.is_best]
    unknown = [c for c in scored if c.tied is None and not c.is_best]
    lines.append(f"tied with it ({RULE}): "
                 + ("; ".join(c.label() for c in tied) if tied else "none: the best is ahead of every other"))
    if view.race:
        lines.append(race_line(configs, view))
    if unknown:
        lines.append("not judged (fewer than 2 seeds that every ranked configuration finished): "
                     + "; ".join(c.label() for c in unknown))
    return lines + diverged_lines(configs)


def usage_line(rows: list[RunRow], slots: int) -> str | None:
    """How busy the workers were: the trials' run time over the sweep's span times the trials that fit at once
    (from the runs' own start and end, so Ray's start-up before the first trial is not counted)."""
    if not rows:
        return None
    busy = sum(r.wall_s for r in rows)
    span = max(r.start_s + r.wall_s for r in rows) - min(r.start_s for r in rows)
    share = busy / (slots * span) if span > 0 else 1.0
    return (f"{busy:.0f} trial-seconds in {span:.0f} s on {slots} trial slot{'s' * (slots > 1)}: "
            f"workers busy {share:.0%}")


RULE = "not separated from the best by a one-sided t test at 5%, noise pooled over configurations and seeds"


def race_line(configs: list[Configuration], view: SweepView) -> str:
    """How the race ended: the survivors' seeds, and who left when."""
    out = [c for c in configs if c.out is not None]
    survivors = [c for c in configs if c.out is None and c.mean is not None]
    seeds = max((c.n for c in survivors), default=0)
    text = (f"raced: {len(survivors)} of {len(survivors) + len(out)} configurations left with {seeds} seeds each "
            f"(max {view.race['max_seeds']})")
    if out:
        text += "; out: " + "; ".join(f"{c.label()} in round {c.out[0]} ({c.out[1]})" for c in out)
    return text


def diverged_lines(configs: list[Configuration]) -> list[str]:
    """Configurations a diverged seed (a non-finite final) keeps out of the ranking."""
    diverged = [c for c in configs if c.diverged_seeds]
    return ["diverged (NaN or inf at the end), so not ranked: "
            + "; ".join(f"{c.label()} on seed {', '.join(map(str, c.diverged_seeds))}" for c in diverged)] \
        if diverged else []


# MLflow 3.17's UI opens every experiment on its GenAI overview unless the address asks for the model-
# training view (the experiment tag mlflow.experimentKind alone does not switch it)
TRAINING_VIEW = "workflowType=machine_learning"


def experiment_url(ui: str, experiment_id: str, run_id: str | None = None) -> str:
    """The experiment's training runs (or one run) in the MLflow UI at `ui`."""
    return f"{ui.rstrip('/')}/#/experiments/{experiment_id}/runs" + (f"/{run_id}" if run_id else "") + \
        f"?{TRAINING_VIEW}"


def ui_hint(tracking_uri: str, experiment_id: str, run_id: str | None = None) -> str:
    """How to look at the sweep: a URL for a server, the `mlflow ui` command for a local store."""
    if urlparse(tracking_uri).scheme in ("http", "https"):
        return f"open {experiment_url(tracking_uri, experiment_id, run_id)}"
    return (f"python -m orchestration.ui --tracking-uri {tracking_uri}  # then open "
            f"{experiment_url('http://127.0.0.1:5000', experiment_id, run_id)}")
