"""`python -m orchestration.report SWEEP`: a sweep's results, rebuilt from MLflow alone.

Works for any past sweep (no Tune state needed): the configurations with their seeds, mean, 95% CI
and whether each is tied with the best, then the sweep's answer. `--runs` lists every run instead;
`--log` writes the tables and plots to the parent run again.
"""

from __future__ import annotations

import argparse
import sys

from orchestration.errors import EXIT_USAGE, SweepError
from orchestration.results import load_results, publish, render
from orchestration.results.rows import find_parent
from orchestration.tracking import check_tracking_uri, resolve_tracking_uri


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m orchestration.report", description=__doc__.splitlines()[0])
    parser.add_argument("sweep", help="MLflow experiment name (the sweep name by default)")
    parser.add_argument("--run", help="parent run id (default: the latest sweep in the experiment)")
    parser.add_argument("--tracking-uri", help="default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db")
    parser.add_argument("--format", choices=("text", "markdown", "csv"), default="text")
    parser.add_argument("--runs", action="store_true", help="every run (CSV) instead of the configurations")
    parser.add_argument("--log", action="store_true", help="also write the tables and plots to the parent run")
    args = parser.parse_args(argv)
    try:
        from mlflow.tracking import MlflowClient

        uri = resolve_tracking_uri(args.tracking_uri)
        check_tracking_uri(uri)
        client = MlflowClient(uri)
        experiment, parent = find_parent(client, args.sweep, args.run)
        results = load_results(client, experiment.experiment_id, parent)
    except SweepError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    if args.runs:
        print(render.runs_csv(results.rows, results.view), end="")
    elif args.format == "text":
        print(render.to_text(results.configs, results.view))
        print()
        print("\n".join(render.answer(results.configs, results.view)))
    else:
        print({"markdown": render.to_markdown, "csv": render.to_csv}[args.format](results.configs, results.view),
              end="")
    if args.log:
        publish(client, parent.info.run_id, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
