"""Benchmark (not a test): how many trials logging at once one MLflow tracking server holds, and whether any
step is lost or logged twice.

For each backend and each N, the benchmark starts the store (a SQLite file, or PostgreSQL 15 on 127.0.0.1
started here with initdb and pg_ctl) and an MLflow server on it, with MLflow's defaults or with the
connection-pool settings `cluster.yaml` gives the head's server. Then N simulated trials log through the
project's own trial-logging path (`orchestration.tracking.TrialRun`): each creates its run as a trial does,
then every `--interval` s logs `--metrics` metrics for its next step and flushes them, for `--seconds`.
The trials are threads in `--processes` processes, started together.

Measured: each `log_batch` request (its wall time, the MLflow client's own retries included, and whether it
raised), batches stored per second from the common start until the last one was stored, the time each trial
spent blocked in logging, and afterwards every run's metric history read back: a step missing from a metric
is lost, a step held twice is duplicated. `local` is the embedded default: no
server, each of the N trials writing straight into one `sqlite:///` file.

    python bench/tracking_load.py                                   # every backend, N = 16, 64, 128
    python bench/tracking_load.py --backends sqlite --trials 16 --seconds 20
    python bench/tracking_load.py --label before   # from a checkout of an older logging path (copy this file in)
    python bench/tracking_load.py --label after --backends sqlite --trials 128 --repeats 2 --add  # more runs
"""

from __future__ import annotations

import argparse
import inspect
import multiprocessing as mp
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path

from common import command, earlier_blocks, git_commit, provenance, write_result

# the pool settings cluster.yaml starts the head's server with (MLflow's default: 5 + 10 overflow per worker)
POOL_ENV = {"MLFLOW_SQLALCHEMYSTORE_POOL_SIZE": "40", "MLFLOW_SQLALCHEMYSTORE_MAX_OVERFLOW": "40"}
BACKENDS = {  # name: (store, server environment); local: no server
    "sqlite": ("sqlite", {}), "postgres": ("postgres", {}),
    "sqlite-pool": ("sqlite", POOL_ENV), "postgres-pool": ("postgres", POOL_ENV), "local": ("sqlite", None)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def as_postgres(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: as root, run its tools as the `postgres` user."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@contextmanager
def postgres(root: Path):
    """A PostgreSQL server of its own on 127.0.0.1 (Debian's postgresql package), yielding its SQLAlchemy URI."""
    for tool in ("initdb", "pg_ctl", "createdb"):
        if shutil.which(tool) is None and not list(Path("/usr/lib/postgresql").glob(f"*/bin/{tool}")):
            raise SystemExit(f"bench/tracking_load.py: PostgreSQL's {tool} is not installed (apt install postgresql)")
    bin_dir = next((str(p.parent) for p in Path("/usr/lib/postgresql").glob("*/bin/initdb")), "")
    tool = lambda name: shutil.which(name) or f"{bin_dir}/{name}"  # noqa: E731
    data, port = root / "pg", free_port()
    root.chmod(0o777)
    subprocess.run(as_postgres([tool("initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"]), check=True,
                   capture_output=True)
    subprocess.run(as_postgres([tool("pg_ctl"), "-D", str(data), "-l", str(root / "pg.log"), "-w", "-o",
                                f"-p {port} -k {root} -c max_connections=500 -c listen_addresses=127.0.0.1", "start"]),
                   check=True, capture_output=True)
    try:
        subprocess.run(as_postgres([tool("createdb"), "-h", "127.0.0.1", "-p", str(port), "mlflow"]), check=True)
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/mlflow"
    finally:
        subprocess.run(as_postgres([tool("pg_ctl"), "-D", str(data), "-m", "fast", "stop"]), capture_output=True)


@contextmanager
def mlflow_server(store_uri: str, root: Path, env: dict):
    """`mlflow server` on the store, with MLflow's default workers; yields its URI once /health answers."""
    import requests

    port = free_port()
    log = open(root / "server.log", "w")
    process = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
                                "--backend-store-uri", store_uri, "--artifacts-destination", str(root / "artifacts")],
                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env={**os.environ, **env})
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 180
        while True:
            if process.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"mlflow server did not start: {(root / 'server.log').read_text()[-2000:]}")
            try:
                if requests.get(f"{uri}/health", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.5)
        yield uri
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        log.close()


class TimedClient:
    """The run's MlflowClient, with every log_batch request timed and its outcome recorded."""

    def __init__(self, client, requests: list):
        self._client, self._requests = client, requests

    def log_batch(self, *args, **kwargs):
        start, points = time.perf_counter(), len(kwargs.get("metrics") or [])
        try:
            result = self._client.log_batch(*args, **kwargs)
        except Exception as err:
            self._requests.append((time.perf_counter() - start, f"{type(err).__name__}: {err}"[:300], time.time(),
                                   points))
            raise
        self._requests.append((time.perf_counter() - start, None, time.time(), points))
        return result

    def __getattr__(self, name):
        return getattr(self._client, name)


def simulated_trial(context, name: str, start: float, seconds: float, interval: float, metrics: int,
                    out: list) -> None:
    """One trial: its run as `TrialRun` opens it, then a step of `metrics` metrics every `interval` s."""
    from orchestration.tracking import TrialRun

    requests: list = []
    record = {"name": name, "requests": requests, "blocked_s": 0.0, "errors": 0, "steps": 0}
    out.append(record)
    while time.time() < start:
        time.sleep(0.01)
    try:
        run = TrialRun(context, name, name, {"trial": name, "lr": 0.001})
    except Exception as err:
        record["open_error"] = f"{type(err).__name__}: {err}"[:300]
        return
    record["run_id"] = run.run_id
    run.client = TimedClient(run.client, requests)
    # the logging path since the background sender: hand each batch over without waiting for the server
    # (a trial waits at its checkpoints only); before it, a flush was the request itself
    send = (lambda: run.flush(wait=False)) if "wait" in inspect.signature(run.flush).parameters else run.flush
    began, step = time.time(), 0
    while time.time() - began < seconds:
        step += 1
        blocked = time.perf_counter()
        try:
            run.log_metrics({f"train/m{i}": step * 0.1 + i for i in range(metrics)}, step=step)
            send()
        except Exception:  # in a sweep the trial would fail here and Tune would retry it
            record["errors"] += 1
        record["blocked_s"] += time.perf_counter() - blocked
        record["steps"] = step
        time.sleep(max(0.0, began + step * interval - time.time()))
    try:
        run.finish()
    except Exception:
        record["errors"] += 1


def load_process(context, names: list[str], start: float, seconds: float, interval: float, metrics: int,
                 queue) -> None:
    out: list = []
    threads = [threading.Thread(target=simulated_trial, args=(context, name, start, seconds, interval, metrics, out))
               for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    queue.put(out)


def check_histories(uri: str, records: list[dict], metrics: int) -> tuple[int, int]:
    """(lost, duplicated) metric points over every run, read back from the store."""
    from mlflow.tracking import MlflowClient

    client, lost, duplicated = MlflowClient(uri), 0, 0
    for record in records:
        if "run_id" not in record:
            continue
        for i in range(metrics):
            steps = [m.step for m in client.get_metric_history(record["run_id"], f"train/m{i}")]
            lost += len(set(range(1, record["steps"] + 1)) - set(steps))
            duplicated += len(steps) - len(set(steps))
    return lost, duplicated


def measure(backend: str, trials: int, args) -> dict:
    from mlflow.tracking import MlflowClient

    from orchestration.tracking import TrackingContext

    store, env = BACKENDS[backend]
    with tempfile.TemporaryDirectory(prefix="tracking_load") as tmp:
        root = Path(tmp)
        with (postgres(root) if store == "postgres" else nullcontext(f"sqlite:///{root / 'mlflow.db'}")) as store_uri:
            with (nullcontext(store_uri) if env is None else mlflow_server(store_uri, root, env)) as uri:
                client = MlflowClient(uri)
                experiment_id = client.create_experiment("load")
                parent = client.create_run(experiment_id).info.run_id
                context = TrackingContext(uri, experiment_id, parent, system_metrics_s=None)
                processes = min(args.processes, trials)
                names = [f"trial_{i:03d}" for i in range(trials)]
                start = time.time() + 5 + trials * 0.05  # every process imported and waiting
                spawn = mp.get_context("spawn")
                queue = spawn.Queue()
                workers = [spawn.Process(target=load_process, args=(context, names[p::processes], start, args.seconds,
                                                                    args.interval, args.metrics, queue))
                           for p in range(processes)]
                for worker in workers:
                    worker.start()
                records = [record for _ in workers for record in queue.get(timeout=args.seconds * 4 + 600)]
                for worker in workers:
                    worker.join()
                lost, duplicated = check_histories(uri, records, args.metrics)
    requests = [r for record in records for r in record["requests"]]
    latencies = sorted(r[0] for r in requests)
    failed = [r[1] for r in requests if r[1]]
    # a batch is one trial's step of --metrics metrics; the sender may carry several in one request
    served = sum(r[3] for r in requests if not r[1]) / args.metrics
    # from the common start until the last batch was stored: a sender may still be sending after the trials'
    # logging loops end, so dividing by --seconds would overstate what the server took in
    last_stored = max((r[2] for r in requests if not r[1]), default=start)
    span = max(last_stored - start, args.seconds)
    quantile = lambda q: round(latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000, 1)  # noqa: E731
    return {"backend": backend, "trials": trials, "offered_batches_per_s": round(trials / args.interval, 1),
            "served_batches_per_s": round(served / span, 1), "last_stored_after_s": round(last_stored - start, 1),
            "requests": len(requests),
            "failed_requests": len(failed), "first_failure": failed[0] if failed else None,
            "trials_that_hit_an_error": sum(1 for r in records if r["errors"] or "open_error" in r),
            "runs_not_opened": sum(1 for r in records if "open_error" in r),
            "lost_points": lost, "duplicated_points": duplicated,
            "p50_ms": quantile(0.5) if latencies else None, "p99_ms": quantile(0.99) if latencies else None,
            "median_blocked_s_per_trial": round(statistics.median(r["blocked_s"] for r in records), 2),
            "steps_per_trial": statistics.median(r["steps"] for r in records)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=list(BACKENDS))
    parser.add_argument("--trials", nargs="+", type=int, default=[16, 64, 128])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between a trial's batches")
    parser.add_argument("--metrics", type=int, default=8, help="metrics per batch")
    parser.add_argument("--processes", type=int, default=8, help="load-generator processes the trials share")
    parser.add_argument("--local-trials", type=int, default=8,
                        help="backend local: processes writing straight into one SQLite file (one trial each)")
    parser.add_argument("--label", default="current", help="which logging path this measures (before/after a change)")
    parser.add_argument("--repeats", type=int, default=1, help="runs per backend and N")
    parser.add_argument("--add", action="store_true",
                        help="add these runs to the label's earlier runs of the same backend and N, not replace them")
    args = parser.parse_args()
    blocks = earlier_blocks("tracking_load", "paths", set())
    same = blocks.get(args.label, {})
    settings = {"seconds": args.seconds, "interval": args.interval, "metrics": args.metrics}
    # runs of this label measured earlier with the same settings are kept unless measured again
    kept = all(same.get(k) == v for k, v in settings.items())
    rows = {(r["backend"], r["trials"]): r["runs"] for r in (same.get("rows", []) if kept else [])}
    for backend in args.backends:
        for trials in (args.trials if BACKENDS[backend][1] is not None else [args.local_trials]):
            earlier = rows.get((backend, trials), []) if args.add else []
            for _ in range(args.repeats):
                run = {**measure(backend, trials, args), "command": command(), "git_commit": git_commit()}
                print(run, flush=True)
                earlier = rows[(backend, trials)] = earlier + [run]
                ordered = sorted(rows.items(), key=lambda item: (list(BACKENDS).index(item[0][0]), item[0][1]))
                blocks[args.label] = {"rows": [{"backend": b, "trials": n, "runs": runs} for (b, n), runs in ordered],
                                      **settings, "ran": provenance()}
                write_result("tracking_load", {"paths": blocks})  # after every run: a long run keeps what it measured


if __name__ == "__main__":
    main()
