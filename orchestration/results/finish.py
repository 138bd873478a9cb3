"""What the sweep leaves in the parent run and the terminal once Tune returns."""

from __future__ import annotations

import sys

from orchestration.console import last_word
from orchestration.errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_STOPPED, EXIT_TRIALS_FAILED
from orchestration.results import load_results, publish, render
from orchestration.results.rows import tune_outcomes
from orchestration.search_space import SweepSpec
from orchestration.tracking import TRIAL_TAG


def parent_params(spec: SweepSpec, options, args) -> dict:
    """Parent-run params: how the sweep was set up, so sweeps compare side by side too."""
    params = {"family": spec.family.name, "metric": spec.metric, "mode": spec.mode, "method": spec.method,
              "num_samples": spec.num_samples, "seeds": spec.seeds or "-", "seed_offset": spec.seed_offset,
              "scheduler": spec.scheduler["type"], "swept": ",".join(spec.swept_keys) or "-",
              "cpus_per_trial": options.cpus_per_trial, "gpus_per_trial": options.gpus_per_trial,
              "max_failures": options.max_failures, "checkpoint_every": options.checkpoint_every,
              "address": args.address or "local", "smoke": args.smoke,
              "cpu_fallback": options.cpu_fallback}
    params["search_seed"] = "-" if options.search_seed is None else options.search_seed
    params["trial_slots"] = options.slots
    if spec.race:
        from orchestration.search import EXTENSIONS

        params["race"] = EXTENSIONS["race"].parent_param(spec)
    for key, entry in spec.parameters.items():
        params[f"space.{key}"] = entry.get("value", entry.get("values", entry))
    return params


def register_best_model(tracking, results, smoke: bool) -> str | None:
    """Register the model of the run the results name (the best configuration's best seed) under the
    experiment's name; returns the line to print, or None when no trial finished."""
    from orchestration.models import MODEL_TAG
    from orchestration.registry import Candidate, register

    best = results.best
    run = best.best_run if best is not None else None
    if run is None:
        return None
    model_uri = tracking.client.get_run(run.run_id).data.tags.get(MODEL_TAG)
    if model_uri is None:
        return f"the best run {run.run_id} logged no model; nothing registered"
    measured_with = ", ".join(f"{k}={v}" for k, v in results.view.measurement.items())
    candidate = Candidate(model_uri, run.run_id, results.view.metric, results.view.mode, run.final, smoke,
                          measured_with)
    try:
        line = register(tracking.client, tracking.experiment_name, candidate, tracking.parent_run_id, best.config_id)
    except Exception as err:  # a store without a registry must not cost the sweep its results
        return f"warning: the best model ({model_uri}) could not be registered: {type(err).__name__}: {err}"[:300]
    from orchestration.tracking import resolve_tracking_uri

    tracking.set_tag("sweep.best_model_uri", model_uri)
    where = "" if tracking.uri == resolve_tracking_uri(None) else f" --tracking-uri {tracking.uri}"
    return f"{line}; use it: python -m orchestration.use {tracking.experiment_name}{where}"


def failure_lines(tracking, outcomes: dict[str, str], limit: int = 5) -> list[str]:
    """One line per distinct error of the failed trials (from their runs' `error` tags), the most
    common first, so a sweep whose trials all hit one problem (a broken GPU node, say) says it once."""
    from collections import Counter

    failed = {trial for trial, outcome in outcomes.items() if outcome == "error"}
    if not failed:
        return []
    errors = Counter(run.data.tags.get("error", "no error recorded").splitlines()[0][:400]
                     for run in tracking.child_runs() if run.data.tags.get(TRIAL_TAG) in failed)
    lines = [f"failed ({count} trial{'s' * (count > 1)}): {error}" for error, count in errors.most_common(limit)]
    if len(errors) > limit:
        lines.append(f"... and {len(errors) - limit} other errors; see each failed run's error.txt")
    return lines


def finish_sweep(tune_results, spec: SweepSpec, tracking, args, resume: str,
                 stalled: tuple[str, str] | None = None, interrupted: bool = False) -> int:
    """Record Tune's verdict on each trial in its run, then publish and print the sweep's results
    from MLflow (the same path as `python -m orchestration.report`); returns the exit code.
    `resume`: the command that continues the sweep; `stalled`: why the stall guard stopped the sweep and what
    to do about it, if it did; `interrupted`: Tune's run ended on Ctrl-C (see orchestration.interruption)."""
    outcomes = tune_outcomes(tune_results.experiment_path,
                             lambda config: int(spec.family.resolve(config)[spec.family.budget_param]),
                             tune_results.filesystem)
    tracking.finalize_trials(outcomes)
    errors = sum(outcome == "error" for outcome in outcomes.values())
    results = load_results(tracking.client, tracking.experiment_id, tracking.client.get_run(tracking.parent_run_id))
    publish(tracking.client, tracking.parent_run_id, results)
    tracking.set_tag("sweep.trials", len(outcomes))
    tracking.set_tag("sweep.errored_trials", errors)

    print()
    print(render.to_text(results.configs, results.view))
    print()
    for line in render.answer(results.configs, results.view):
        print(f"[sweep] {line}")
    print(f"[sweep] {len(outcomes)} trials, {errors} failed; parent run {tracking.parent_run_id} "
          f"in experiment {tracking.experiment_name!r}")
    usage = render.usage_line(results.rows, results.view.slots)
    if usage:
        print(f"[sweep] {usage}")
    for line in failure_lines(tracking, outcomes):
        print(f"[sweep] {line}", file=sys.stderr)
    print(f"[sweep] compare the trials: {render.ui_hint(tracking.uri, tracking.experiment_id)}")
    interrupted = interrupted or any(outcome == "interrupted" for outcome in outcomes.values())
    if stalled or interrupted:  # a part of the sweep's answer is not the answer: the registry waits for the end
        print("[sweep] nothing registered: the sweep did not finish (--resume registers its best at the end)")
    else:
        line = register_best_model(tracking, results, smoke=args.smoke)
        if line:
            print(f"[sweep] {line}")

    if stalled:
        reason, hint = stalled
        tracking.set_tag("sweep.stalled", reason)
        tracking.close("FAILED")
        last_word(f"[sweep] stalled: {reason}; {hint}, then continue with: {resume}")
        return EXIT_STOPPED
    if interrupted:
        tracking.close("KILLED")
        last_word(f"[sweep] interrupted; continue with: {resume}")
        return EXIT_INTERRUPTED
    tracking.close("FAILED" if outcomes and errors == len(outcomes) else "FINISHED")
    return EXIT_TRIALS_FAILED if errors else EXIT_OK
