"""`python -m orchestration.use NAME`: put the best model a sweep found to use.

Loads `models:/NAME@best` (or `--model URI`) from the MLflow Model Registry, then by its family:
- diffusion: a grid of samples (PNG);
- contrastive: kNN and linear-probe accuracy of its features on a data set, with a t-SNE (PNG);
- rl: N evaluation episodes, the return mean with its 95% interval, and one episode as a GIF.
The outputs go to `--out` and to a new MLflow run nested under the sweep's parent run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from orchestration.errors import EXIT_USAGE, SweepError

USE_TAG = "sweep.use.model_uri"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m orchestration.use",
        description="Load a sweep's registered model (alias best) and use it: samples, embeddings or rollouts.")
    parser.add_argument("name", help="registered model name: the sweep's experiment name (default: the sweep name)")
    parser.add_argument("--model", metavar="URI", help="another model: models:/NAME/VERSION, models:/NAME@ALIAS or "
                                                      "models:/MODEL_ID (default: models:/NAME@best)")
    parser.add_argument("--tracking-uri", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else "
                                               "sqlite:///mlflow.db)")
    parser.add_argument("--out", metavar="DIR", help="where to write the outputs (default: use-NAME)")
    parser.add_argument("--seed", type=int, help="sampling / evaluation seed (default: the trial's)")
    parser.add_argument("--samples", type=int, default=64, help="diffusion: images in the grid")
    parser.add_argument("--sampler", choices=("ddpm", "ddim"), help="diffusion: sampler (default: the trial's)")
    parser.add_argument("--sample-steps", type=int, help="diffusion: DDIM steps (default: the trial's)")
    parser.add_argument("--dataset", help="contrastive: data set to embed (default: the trial's)")
    parser.add_argument("--folder", help="contrastive: ImageFolder root for --dataset folder")
    parser.add_argument("--episodes", type=int, help="rl: evaluation episodes (default: the trial's)")
    parser.add_argument("--epsilon", type=float, help="rl: chance of a random action (default: the trial's)")
    parser.add_argument("--no-video", dest="video", action="store_false", help="rl: skip the episode GIF")
    return parser.parse_args(argv)


def _check(args: argparse.Namespace) -> None:
    for flag, value in (("--samples", args.samples), ("--sample-steps", args.sample_steps),
                        ("--episodes", args.episodes)):
        if value is not None and value < 1:
            raise SweepError(f"{flag} must be >= 1, got {value}")
    if args.epsilon is not None and not 0 <= args.epsilon <= 1:
        raise SweepError(f"--epsilon must be in [0, 1], got {args.epsilon}")


def run(args: argparse.Namespace) -> int:
    _check(args)
    from orchestration.family import load_family
    from orchestration.models import resolve
    from orchestration.registry import ALIAS
    from orchestration.tracking import _client, check_tracking_uri, resolve_tracking_uri

    uri = resolve_tracking_uri(args.tracking_uri)
    check_tracking_uri(uri)
    if uri.startswith("sqlite:///") and not Path(uri[len("sqlite:///"):]).exists():
        raise SweepError(f"no MLflow store at {uri}; give the sweep's --tracking-uri, or run a sweep here first")
    client = _client(uri)
    model_uri = args.model or f"models:/{args.name}@{ALIAS}"
    try:
        source = resolve(client, model_uri)
    except SweepError:
        if args.model:
            raise
        raise SweepError(f"no model registered as {args.name!r} with alias {ALIAS!r} at {uri}; a finished "
                         f"sweep registers one: python -m orchestration.sweep {args.name}") from None
    family = load_family(source.family)
    if family.use is None:
        raise SweepError(f"family {family.name!r} has no use command")
    out_dir = Path(args.out or f"use-{args.name}").resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    print(f"[use] {model_uri}" + (f" (version {source.version})" if source.version else "")
          + f": {family.name} model of run {source.run_id}")

    import mlflow.pyfunc
    from mlflow.tracking._tracking_service.utils import _use_tracking_uri

    with _use_tracking_uri(uri):
        model = mlflow.pyfunc.load_model(model_uri)
    run = client.get_run(source.run_id)
    run_params = run.data.params
    scored = sweep_score(client, run, family)
    if scored:
        print(f"[use] {scored}")
    result = family.use_function()(model, run_params, args, out_dir)
    run_id = log_use(client, source, args, result)
    print(f"[use] {result['summary']}")
    print(f"[use] logged to run {run_id}" + (f" under the sweep's parent run {source.parent_run_id}"
                                             if source.parent_run_id else ""))
    return 0


def sweep_score(client, run, family) -> str | None:
    """What the run scored on its sweep's metric, with how that was measured (FID with its sample
    count: FIDs from different sample counts are not comparable)."""
    from orchestration.tracking import PARENT_TAG

    parent_id = run.data.tags.get(PARENT_TAG)
    metric = client.get_run(parent_id).data.params.get("metric") if parent_id else None
    if metric is None or metric not in run.data.metrics:
        return None
    how = ", ".join(f"{k}={run.data.params.get(k, '?')}" for k in family.measured_with.get(metric, ()))
    return f"its sweep scored it {metric} {run.data.metrics[metric]:.4g}" + (f" ({how})" if how else "")


def log_use(client, source, args: argparse.Namespace, result: dict) -> str:
    """A run nested under the sweep's parent: what was used, with which options, and what came out."""
    import time

    from mlflow.entities import Metric, Param

    from orchestration.tracking import PARENT_TAG

    tags = {USE_TAG: source.uri, "sweep.use.source_run_id": source.run_id, "sweep.family": source.family}
    if source.parent_run_id:
        tags[PARENT_TAG] = source.parent_run_id
    run = client.create_run(source.experiment_id, run_name=f"use {source.uri}", tags=tags)
    run_id = run.info.run_id
    options = {k: v for k, v in vars(args).items() if v is not None and k not in ("tracking_uri", "out")}
    client.log_batch(run_id, params=[Param(k, str(v)) for k, v in options.items()],
                     metrics=[Metric(k, float(v), int(time.time() * 1000), 0) for k, v in result["metrics"].items()])
    for path in result["files"]:
        client.log_artifact(run_id, str(path))
    client.set_terminated(run_id, "FINISHED")
    return run_id


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return run(args)
    except SweepError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
