"""Connecting to Ray: an embedded local instance by default, or a cluster via --address."""

from __future__ import annotations

import socket
import sys
from urllib.parse import urlparse, urlunparse

from orchestration.errors import SweepError, first_line


def port_open(host: str, port: int, timeout: float) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def check_address(address: str, timeout: float = 5.0) -> None:
    """host:port and ray://host:port must accept a TCP connection before ray.init waits on them."""
    if address in ("auto", "local"):
        return
    target = address.removeprefix("ray://")
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit():
        raise SweepError(f"Ray address {address!r} must be 'auto', 'host:port' or 'ray://host:port'")
    if not port_open(host, int(port), timeout):
        raise SweepError(f"Ray address {address} is unreachable (no answer on {host}:{port})")


def connect(address: str | None, num_cpus: int | None = None, num_gpus: float | None = None) -> dict:
    """Start or join Ray; return the cluster's resources. Errors become one-line SweepErrors.
    `num_cpus` / `num_gpus` size a new local instance (None: what Ray detects)."""
    import os

    import ray

    if address:
        check_address(address)
    forwarded = trial_environment()
    runtime_env = {"env_vars": forwarded} if forwarded else {}
    if address:
        # ship this checkout's code to the cluster, so nodes need the dependencies but not our packages
        import algorithms
        import orchestration

        runtime_env["py_modules"] = [os.path.dirname(orchestration.__file__), os.path.dirname(algorithms.__file__)]
        runtime_env["excludes"] = ["__pycache__"]
    runtime_env = runtime_env or None
    try:
        if address:
            ray.init(address=address, log_to_driver=True, runtime_env=runtime_env)
        else:
            ray.init(num_cpus=num_cpus, num_gpus=num_gpus, include_dashboard=False, runtime_env=runtime_env)
    except (ConnectionError, RuntimeError, ValueError) as err:
        raise SweepError(f"cannot connect to Ray at {address or 'a new local instance'}: {first_line(err)}") from None
    return ray.cluster_resources()


def trial_environment() -> dict[str, str]:
    """What trials on every node need from this process's environment, so nobody copies files to workers:
    SWEEP_* settings (e.g. fault injection), the object store's endpoint and credentials, and the
    tracking server's credentials (from MLFLOW_TRACKING_USERNAME / _PASSWORD or MLflow's credentials file).
    They travel in the job's runtime environment, which Ray keeps in its control store, not in Tune's
    experiment state (that is written to the storage path)."""
    import os

    from mlflow.utils.credentials import read_mlflow_creds

    from orchestration.storage import forwarded_environment

    env = {k: v for k, v in os.environ.items() if k.startswith("SWEEP_")} | forwarded_environment()
    creds = read_mlflow_creds()
    if creds.username and creds.password:
        env |= {"MLFLOW_TRACKING_USERNAME": creds.username, "MLFLOW_TRACKING_PASSWORD": creds.password}
    if os.environ.get("MLFLOW_TRACKING_TOKEN"):
        env["MLFLOW_TRACKING_TOKEN"] = os.environ["MLFLOW_TRACKING_TOKEN"]
    return env


LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _answers(uri: str) -> bool:
    from orchestration.tracking import server_health

    return server_health(uri, timeout=3) is None


def tracking_uri_for_workers(uri: str, address: str | None, node_ip: str, answers=_answers) -> str:
    """On a cluster, trials run on other nodes: a loopback MLflow URI given to the driver (typical on
    the head node) must name the driver's node instead, when the server listens there too; a local
    SQLite file is only reachable where every node shares this file system."""
    if not address:
        return uri
    parsed = urlparse(uri)
    if parsed.scheme in ("http", "https") and parsed.hostname in LOOPBACK:
        netloc = f"{node_ip}:{parsed.port}" if parsed.port else node_ip
        rewritten = urlunparse(parsed._replace(netloc=netloc))
        if answers(rewritten):
            return rewritten
        print(f"[sweep] warning: the MLflow server at {uri} listens on loopback only; trials on other "
              "machines cannot reach it (start it with --host 0.0.0.0)", file=sys.stderr)
    if parsed.scheme in ("sqlite", "file"):
        print(f"[sweep] warning: {uri} is a local store; trials on other nodes can only log to it if they "
              "share this file system (use an MLflow server: --tracking-uri http://HEAD:5000)", file=sys.stderr)
    return uri
