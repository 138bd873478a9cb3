"""`python -m orchestration.ui`: the MLflow UI on the configured tracking store.

A tracking server already serves its UI, so for http(s) URIs this prints the address; for a local
store (SQLite, the default) it runs `mlflow ui` on it.
"""

from __future__ import annotations

import argparse
import os
import sys
from urllib.parse import urlparse

from orchestration.results.render import TRAINING_VIEW
from orchestration.tracking import resolve_tracking_uri


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m orchestration.ui", description=__doc__.splitlines()[0])
    parser.add_argument("--tracking-uri", help="default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db")
    parser.add_argument("--host", default="127.0.0.1", help="keep 127.0.0.1 and use port forwarding on clusters")
    parser.add_argument("--port", type=int, default=5000)
    args = parser.parse_args(argv)
    uri = resolve_tracking_uri(args.tracking_uri)
    if urlparse(uri).scheme in ("http", "https"):
        print(f"{uri} is a tracking server; its UI is at {uri}/#/experiments?{TRAINING_VIEW}")
        return 0
    print(f"MLflow UI for {uri} on http://{args.host}:{args.port}/#/experiments?{TRAINING_VIEW}", flush=True)
    os.execvp(sys.executable, [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri,
                               "--host", args.host, "--port", str(args.port)])


if __name__ == "__main__":
    sys.exit(main())
