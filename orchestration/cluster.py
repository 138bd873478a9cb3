"""Connecting to Ray: an embedded local instance by default, or a cluster via --address."""

from __future__ import annotations

import socket

from orchestration.errors import SweepError


def _port_open(host: str, port: int, timeout: float) -> bool:
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
    if not _port_open(host, int(port), timeout):
        raise SweepError(f"Ray address {address} is unreachable (no answer on {host}:{port})")


def connect(address: str | None, num_cpus: int | None = None) -> dict:
    """Start or join Ray; return the cluster's resources. Errors become one-line SweepErrors."""
    import ray

    if address:
        check_address(address)
    try:
        if address:
            ray.init(address=address, log_to_driver=True)
        else:
            ray.init(num_cpus=num_cpus, include_dashboard=False)
    except (ConnectionError, RuntimeError, ValueError) as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise SweepError(f"cannot connect to Ray at {address or 'a new local instance'}: {first_line}") from None
    return ray.cluster_resources()
