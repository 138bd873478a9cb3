"""What the sweep leaves in the parent run and the terminal once Tune returns."""

from __future__ import annotations

import sys

from orchestration.errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_TRIALS_FAILED
from orchestration.search_space import SweepSpec
from orchestration.report import log_plots, log_table
from orchestration.summary import collect_rows, load_analysis, to_text, ui_hint


def parent_params(spec: SweepSpec, options, args) -> dict:
    """Parent-run params: how the sweep was set up, so sweeps compare side by side too."""
    params = {"family": spec.family.name, "metric": spec.metric, "mode": spec.mode, "method": spec.method,
              "num_samples": spec.num_samples, "scheduler": spec.scheduler["type"],
              "swept": ",".join(spec.swept_keys) or "-", "cpus_per_trial": options.cpus_per_trial,
              "gpus_per_trial": options.gpus_per_trial, "max_failures": options.max_failures,
              "address": args.address or "local", "smoke": args.smoke}
    for key, entry in spec.parameters.items():
        params[f"space.{key}"] = entry.get("value", entry.get("values", entry))
    return params


def finish_sweep(results, spec: SweepSpec, tracking, args, name: str) -> int:
    """Log the results table and best trial to the parent run, print the summary, pick the exit code."""
    rows = collect_rows(load_analysis(results.experiment_path), spec)
    errors = sum(r.outcome == "error" for r in rows)
    interrupted = any(r.outcome == "interrupted" for r in rows)
    tracking.finalize_trials({r.trial_id: r for r in rows})

    log_table(tracking.client, tracking.parent_run_id, spec, rows)
    scored = [r for r in rows if r.final is not None]
    best = scored[0] if scored else None
    if best:
        tracking.log_metrics({f"best/{spec.metric}": best.final})
        tracking.set_tag("sweep.best_run_id", best.run_id)
        for key, value in best.config.items():
            tracking.set_tag(f"sweep.best.{key}", value)
    tracking.set_tag("sweep.trials", len(rows))
    try:  # plots come from what MLflow holds, like `python -m orchestration.report`
        log_plots(tracking.client, tracking.parent_run_id, spec, rows)
    except Exception as err:  # a plotting problem must not cost the sweep its summary
        print(f"[sweep] warning: comparison plots failed: {err}", file=sys.stderr)
    tracking.set_tag("sweep.errored_trials", errors)

    print()
    print(to_text(rows, spec))
    print()
    if best:
        shown = ", ".join(f"{k}={v}" for k, v in best.config.items()) or "(no swept parameters)"
        print(f"[sweep] best trial: {shown}")
        print(f"[sweep]   {spec.metric} = {best.final:.4g}  (MLflow run {best.run_id})")
    print(f"[sweep] {len(rows)} trials, {errors} failed; parent run {tracking.parent_run_id} "
          f"in experiment {tracking.experiment_name!r}")
    print(f"[sweep] compare the trials: {ui_hint(tracking.uri, tracking.experiment_id)}")

    if interrupted:
        tracking.close("KILLED")
        print(f"[sweep] interrupted; continue with: python -m orchestration.sweep {args.sweep} --name {name} "
              "--resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    tracking.close("FAILED" if errors == len(rows) else "FINISHED")
    return EXIT_TRIALS_FAILED if errors else EXIT_OK
