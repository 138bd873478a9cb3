"""`python -m orchestration.sweep NAME`: validate a sweep, run it on Ray Tune, track it in MLflow.

Order matters: everything the user typed is checked (search space, options, MLflow URI,
Ray address) before any trial starts, and each problem is reported in one line, exit 2.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import dataclasses
import json
import math
import os
import sys
import time
from pathlib import Path

import yaml

from orchestration.console import last_word, quiet_library_logs
from orchestration.errors import (EXIT_INTERRUPTED, EXIT_OK, EXIT_STOPPED, EXIT_USAGE, SweepError, SweepStopped,
                                  infrastructure_failure, is_disk_full)
from orchestration.interruption import tune_was_interrupted
from orchestration.search_space import available_sweeps, load_sweep
from orchestration.state_notes import FinishedNote, StoppedNote

TIMELINE_FILE = "sweep_timeline.json"  # the driver's phases in seconds, next to Tune's state


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m orchestration.sweep",
        description="Run a hyperparameter sweep on Ray Tune; every trial is an MLflow run "
                    "nested under one parent run per sweep.",
        epilog=f"sweeps in search_spaces/: {', '.join(available_sweeps()) or 'none'}")
    parser.add_argument("sweep", help="sweep name (search_spaces/NAME.yaml) or a path to a YAML file")
    parser.add_argument("--space", metavar="FILE", help="search-space file to use instead of search_spaces/NAME.yaml")
    parser.add_argument("--num-samples", type=int, help="trials per grid point (random: trials in total)")
    parser.add_argument("--seeds", type=int, metavar="N",
                        help="replicates: run every configuration with N seeds (overrides the file's `seeds`)")
    parser.add_argument("--seed-offset", type=int, metavar="K",
                        help="seeds K..K+N-1 instead of 0..N-1 (a re-run with disjoint seeds)")
    parser.add_argument("--search-seed", type=int, metavar="N",
                        help="seed of the search: TPE's suggestions (default 0) and the random method's draws "
                             "(default: unseeded), so a search repeats exactly or is repeated independently")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="fix a parameter for every trial (YAML value), e.g. --set iterations=3")
    parser.add_argument("--stall-timeout", type=float, metavar="S",
                        help="stop (resumably, exit 3) when trials wait and none has run, started or reported for S "
                             "seconds; default 300, 1200 on an autoscaling cluster; 0: wait forever")
    parser.add_argument("--smoke", action="store_true", help="tiny budget per trial, to check the wiring")
    parser.add_argument("--address", help="Ray cluster: auto, host:port or ray://host:port (default: local Ray)")
    parser.add_argument("--num-cpus", type=int, help="CPUs of the local Ray instance (default: all)")
    parser.add_argument("--num-gpus", type=float,
                        help="GPUs of the local Ray instance (default: those Ray detects); Ray schedules declared "
                             "GPUs whether or not they exist, see --cpu-fallback")
    parser.add_argument("--tracking-uri", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, "
                                               "else sqlite:///mlflow.db)")
    parser.add_argument("--experiment", help="MLflow experiment name (default: the sweep name); the best model is "
                                             "registered under it")
    parser.add_argument("--system-metrics-interval", type=float, default=10.0, metavar="S",
                        help="sample each trial's CPU, memory and GPU use every S seconds into its run (MLflow "
                             "system metrics; default 10)")
    parser.add_argument("--no-system-metrics", dest="system_metrics", action="store_false",
                        help="do not record system metrics")
    parser.add_argument("--max-concurrent", type=int, help="trials running at once (default: as resources allow)")
    parser.add_argument("--cpus-per-trial", type=float, default=1.0)
    parser.add_argument("--gpus-per-trial", type=float,
                        help="GPUs per trial, fractions allowed (default: the family's share when the cluster "
                             "has GPUs, else 0)")
    parser.add_argument("--cpu-fallback", action="store_true",
                        help="let a trial that Ray gave a GPU train on the CPU when torch sees no CUDA (tagged "
                             "device.cpu_fallback on its run); without it such a trial fails at once, naming the node")
    parser.add_argument("--max-failures", type=int, default=2,
                        help="retries of a crashed trial from its last checkpoint")
    parser.add_argument("--checkpoint-every", type=int, default=1, metavar="N",
                        help="a Tune checkpoint every N iterations and at the end (default 1); a crashed trial "
                             "repeats up to N iterations since its last one, logging none of them twice")
    parser.add_argument("--storage-path", default="ray_results",
                        help="where Tune keeps checkpoints and state (shared storage on a cluster)")
    parser.add_argument("--name", help="Tune experiment name (default: NAME-<timestamp>); give it to --resume")
    parser.add_argument("--resume", action="store_true",
                        help="continue the latest interrupted run of this sweep (or --name) in the same MLflow runs")
    parser.add_argument("--verbose", type=int, default=1, choices=(0, 1, 2), help="Tune progress output")
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    return args


def continue_command(args: argparse.Namespace, name: str) -> str:
    """The command that continues this sweep: the same options, with --name NAME --resume."""
    import shlex

    kept, skip = [], False
    for item in args.argv:
        if skip:
            skip = False
        elif item == "--name":
            skip = True
        elif item != "--resume" and not item.startswith("--name="):
            kept.append(item)
    return "python -m orchestration.sweep " + shlex.join([*kept, "--name", name, "--resume"])


def _parse_sets(items: list[str]) -> dict:
    overrides = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise SweepError(f"--set {item!r}: expected KEY=VALUE")
        try:
            overrides[key] = yaml.safe_load(text)
        except yaml.YAMLError:
            raise SweepError(f"--set {item!r}: the value is not valid YAML") from None
    return overrides


def _check_options(args: argparse.Namespace) -> None:
    checks = [("--num-samples", args.num_samples, 1), ("--max-concurrent", args.max_concurrent, 1),
              ("--num-cpus", args.num_cpus, 1), ("--max-failures", args.max_failures, 0), ("--seeds", args.seeds, 1),
              ("--seed-offset", args.seed_offset, 0), ("--checkpoint-every", args.checkpoint_every, 1)]
    for flag, value, low in checks:
        if value is not None and value < low:
            raise SweepError(f"{flag} must be >= {low}, got {value}")
    if not args.cpus_per_trial > 0 or not math.isfinite(args.cpus_per_trial):
        raise SweepError(f"--cpus-per-trial must be > 0, got {args.cpus_per_trial}")
    if args.num_gpus is not None and not 0 <= args.num_gpus < math.inf:
        raise SweepError(f"--num-gpus must be >= 0, got {args.num_gpus}")
    if args.address and (args.num_cpus is not None or args.num_gpus is not None):
        raise SweepError("--num-cpus and --num-gpus size a new local Ray instance; a cluster (--address) has its own")
    if args.gpus_per_trial is not None and not 0 <= args.gpus_per_trial < math.inf:
        raise SweepError(f"--gpus-per-trial must be >= 0, got {args.gpus_per_trial}")
    if not 0 < args.system_metrics_interval < math.inf:
        raise SweepError(f"--system-metrics-interval must be > 0 seconds, got {args.system_metrics_interval}")
    if args.stall_timeout is not None and not 0 <= args.stall_timeout < math.inf:
        raise SweepError(f"--stall-timeout must be >= 0 seconds, got {args.stall_timeout}")


def prepare(args: argparse.Namespace):
    """All checks that need neither Ray nor a trial: returns the spec, tracking URI and Tune options."""
    from orchestration.storage import Storage
    from orchestration.tracking import check_experiment_writable, check_tracking_uri, resolve_tracking_uri
    from orchestration.tuning import latest_experiment

    _check_options(args)
    spec = load_sweep(args.space or args.sweep)
    if args.space:
        spec.name = Path(args.sweep).stem
    if args.seeds or args.seed_offset is not None:
        spec = spec.with_seeds(args.seeds, args.seed_offset)
    if args.smoke and spec.seeds and not args.seeds:  # a wiring check needs one seed per configuration, no race
        spec = dataclasses.replace(spec, race=None).with_seeds(1, None)
    overrides = {**(spec.family.smoke if args.smoke else {}), **_parse_sets(args.set)}
    if overrides:
        spec = spec.with_overrides(overrides)
    if args.num_samples:
        spec.num_samples = args.num_samples
        refusal = spec.search_method.replicates_refusal(spec.num_samples, spec.seeds)
        if refusal:
            raise SweepError(f"--num-samples: {refusal}")

    if args.address is None:  # the local machine is the cluster: a GPU request is judged before Ray starts
        from orchestration.resources import check_cuda_requests

        check_cuda_requests(spec)

    uri = resolve_tracking_uri(args.tracking_uri)
    check_tracking_uri(uri)
    check_experiment_writable(uri, args.experiment or spec.name)

    storage = Storage.parse(args.storage_path)
    storage.check()
    name = args.name
    if args.resume:
        name = name or latest_experiment(storage, spec.name)
        if not name or not storage.has_experiment(name):
            raise SweepError(f"nothing to resume for sweep {spec.name!r} in {storage.display()}")
    name = name or f"{spec.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    return spec, uri, storage, name


def run(args: argparse.Namespace) -> int:
    from orchestration.overhead import Timeline

    timeline = Timeline()
    spec, uri, storage, name = prepare(args)
    if args.resume and (done := FinishedNote(storage, name).read()):  # before Ray starts: there is nothing left to run
        print(f"[sweep] {name} already finished ({done}); nothing to resume, nothing registered again. "
              f"Its results: python -m orchestration.report {args.experiment or spec.name}")
        return EXIT_OK
    timeline.mark("checks")
    command = continue_command(args, name)
    try:
        return sweep(args, spec, uri, storage, name, timeline, command)
    except SweepStopped:
        raise
    except Exception as err:  # the driver's own write to a full disk or a tracking server gone away
        if is_disk_full(err):
            import traceback

            from orchestration.disk_full import full_disk_stop

            raise full_disk_stop("".join(traceback.format_exception(err)), "the driver", command, uri, storage, name,
                                 args.experiment or spec.name) from err
        reason = infrastructure_failure(err)
        if reason is None:
            raise
        raise SweepStopped(f"{reason}; what was logged and checkpointed is kept: once that is fixed, continue "
                           f"with: {command}") from err


def sweep(args: argparse.Namespace, spec, uri: str, storage, name: str, timeline, command: str) -> int:
    """Everything after the checks: Ray, the parent run, Tune's trials, the results. `command`: the one
    that continues the sweep, for the lines that stop it."""
    from orchestration import cluster
    from orchestration.resources import (check_cuda_requests, check_trials_fit, cluster_shape, fit_smoke, trial_shapes,
                                         trials_at_once)
    from orchestration.disk_full import trials_full_disk_stop
    from orchestration.node_watch import NodeWatch
    from orchestration.results.finish import finish_sweep, parent_params
    from orchestration.stall import StallGuard, default_timeout
    from orchestration.tracking import SweepTracking, write_permission
    from orchestration.trial_errors import TrialErrors
    from orchestration.tuning import TuneOptions, build_tuner, gpus_per_trial

    # MLflow's store module (SQLAlchemy's, about 2 s of imports) loads while Ray starts; nothing is created
    # in the store until the checks that need Ray have passed. mlflow itself is imported here first: two
    # threads importing one package can deadlock.
    import mlflow.tracking  # noqa: F401

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        loading = pool.submit(load_store_module, uri)
        resources = cluster.connect(args.address, args.num_cpus, args.num_gpus)
        loading.result()
    timeline.mark("ray")
    shape = cluster_shape()
    stall = StallGuard(default_timeout(shape.autoscaling) if args.stall_timeout is None else args.stall_timeout)
    trial_errors = TrialErrors()
    watches = (stall, trial_errors) + ((NodeWatch(),) if args.address else ())  # a cluster's nodes can be lost
    options = TuneOptions(
        name=name, storage=storage, cpus_per_trial=args.cpus_per_trial,
        gpus_per_trial=gpus_per_trial(args.gpus_per_trial, resources.get("GPU", 0), spec.family.gpu_fraction),
        max_concurrent=args.max_concurrent, max_failures=args.max_failures, checkpoint_every=args.checkpoint_every,
        verbose=args.verbose, callbacks=watches,
        search_seed=args.search_seed, cpu_fallback=args.cpu_fallback)
    check_cuda_requests(spec, shape, options.gpus_per_trial)
    if args.smoke:
        spec = fit_smoke(spec, shape.largest_cpus() - options.cpus_per_trial)
    shapes = trial_shapes(spec, options.cpus_per_trial, options.gpus_per_trial)
    check_trials_fit(shapes, shape)
    slots = trials_at_once(shapes, shape)
    if shape.autoscaling:  # nodes arrive when trials ask for them: as many as a race's first round holds
        slots = max(slots, len(spec.configurations()) * (spec.race["first_seeds"] if spec.race else 1))
    options = dataclasses.replace(options, slots=min(slots, args.max_concurrent or slots))

    experiment_name = args.experiment or spec.name
    with write_permission(uri, experiment_name):
        tracking = SweepTracking(uri, experiment_name)
        parent = tracking.open_parent(name, parent_params(spec, options, args), tags={
            "sweep.name": spec.name, "sweep.family": spec.family.name}, resume=args.resume)
    if not args.resume:
        tracking.log_text(yaml.safe_dump(spec.raw, sort_keys=False), "search_space.yaml")
    print(f"[sweep] {spec.name}: family {spec.family.name}, {spec.metric} ({spec.mode}), "
          f"{options.cpus_per_trial:g} CPU + {options.gpus_per_trial:g} GPU per trial on "
          f"{resources.get('CPU', 0):g} CPU / {resources.get('GPU', 0):g} GPU")
    print(f"[sweep] MLflow: experiment {tracking.experiment_name!r}, parent run {parent} at {uri}")
    print(f"[sweep] Tune: {storage.display(name)}" + (" (resumed)" if args.resume else ""))
    timeline.mark("mlflow")

    import ray

    worker_uri = cluster.tracking_uri_for_workers(uri, args.address, ray.util.get_node_ip_address())
    context = tracking.context(worker_uri, spec.config_keys,
                               args.system_metrics_interval if args.system_metrics else None,
                               race=(spec.seed_offset, spec.race["first_seeds"]) if spec.race else None)
    tuner = build_tuner(spec, context, options, resume=args.resume)
    stopped_note = StoppedNote(storage, name)
    why_stopped = stopped_note.read() if args.resume else None
    if why_stopped:  # the last attempt could not tell MLflow why it stopped
        tracking.set_tag("sweep.stopped", why_stopped)
        stopped_note.delete()
    try:
        results = tuner.fit()
    except KeyboardInterrupt:
        tracking.close("KILLED")
        last_word(f"[sweep] interrupted; continue with: {command}")
        return EXIT_INTERRUPTED
    except BaseException as err:
        if trial_errors.disk_full:  # Tune's own ending can trip over the full disk (a truncated error file)
            raise trials_full_disk_stop(trial_errors.disk_full, tracking, command, uri, storage, name) from err
        stopped_note.write(err)
        try:
            tracking.close("FAILED")
        except Exception:  # the store may be what failed (a full disk, a server that went away)
            pass
        raise
    if trial_errors.disk_full:  # the results cannot be stored, nor a model registered: stop here
        raise trials_full_disk_stop(trial_errors.disk_full, tracking, command, uri, storage, name)
    interrupted = tune_was_interrupted()  # read before anything else can touch the signal handlers
    timeline.mark("tune")
    try:
        stalled = (stall.reason, stall.hint) if stall.reason else None
        code = finish_sweep(results, spec, tracking, args, command, stalled=stalled, interrupted=interrupted)
    except Exception as err:
        stopped_note.write(err)
        raise
    timeline.mark("results")
    if code == EXIT_OK:  # every trial done and the ending run: a later --resume has nothing to do (with failed
        # trials it has: Tune's restore retries them)
        FinishedNote(storage, name).put(
            f"parent run {tracking.parent_run_id}, exit {code}, {time.strftime('%Y-%m-%d %H:%M:%S')}")
    print(f"[sweep] {timeline.summary()}")
    with contextlib.suppress(OSError):  # the times are for bench/sweep_overhead.py; a full disk may refuse them
        storage.write_text(name, TIMELINE_FILE, json.dumps(timeline.durations()))
    return code


def load_store_module(uri: str) -> None:
    """Import the MLflow store module this URI needs (see `run`)."""
    import importlib
    from urllib.parse import urlparse

    scheme = urlparse(uri).scheme.split("+")[0]
    if scheme in ("sqlite", "postgresql", "mysql", "mssql"):
        importlib.import_module("mlflow.store.tracking.sqlalchemy_store")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "1")
    os.environ.setdefault("TUNE_PRINT_ALL_TRIAL_ERRORS", "0")  # trial_errors.TrialErrors says each error once
    quiet_library_logs()
    try:
        return run(args)
    except SweepError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except SweepStopped as err:
        last_word(f"error: {err}")
        return EXIT_STOPPED
    except Exception as err:
        reason = infrastructure_failure(err)
        if reason is None:
            raise
        last_word(f"error: {reason}; what was logged and checkpointed is kept: once that is fixed, run the same "
                  "command with --resume")
        return EXIT_STOPPED


def exit_without_teardown(code: int) -> None:
    """Exit once everything is stored, skipping only Python's teardown of its modules (about 2 s with torch,
    mlflow and Ray loaded, on every sweep). Exit handlers still run: Ray's shutdown, logging's flush."""
    import atexit

    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    exit_without_teardown(main())
