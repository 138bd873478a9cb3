"""An authenticated tracking server, started as cluster.yaml starts it (`python -m orchestration.tracking_server`,
MLflow's basic-auth app): its admin password stays in a private file, anonymous requests get 401, sweeps
without credentials or with wrong ones are refused in one line before Ray starts, a sweep that reads them
from MLflow's credentials file finishes, and a second user cannot write to the first one's experiment."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from conftest import REPO, MlflowServer
from test_sweep_integration import write_space


class AuthServer(MlflowServer):
    """The head's server: `python -m orchestration.tracking_server`, its home and the user's home under root."""

    def __init__(self, root: Path):
        self.home = root / "user-home"  # the head user's home: ~/.mlflow/credentials is written there
        super().__init__(root)
        self.password = (root / "mlflow" / "admin_password").read_text().strip()

    def command(self, root: Path, artifacts: str | None) -> list[str]:
        return [sys.executable, "-m", "orchestration.tracking_server", "--home", str(root / "mlflow"), "--port",
                str(self.port), "--workers", "1", "--credentials-file", str(self.home / ".mlflow" / "credentials")]

    def request(self, method: str, path: str, auth=None, **kwargs) -> requests.Response:
        return requests.request(method, f"{self.uri}/api/2.0/mlflow/{path}", auth=auth, timeout=30, **kwargs)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = AuthServer(tmp_path_factory.mktemp("auth"))
    yield server
    server.stop()


def sweep(tmp_path, server, env: dict, *args: str, timeout: float = 600):
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_TRACKING_")}
    return subprocess.run([sys.executable, "-m", "orchestration.sweep", "tiny", "--num-cpus", "2",
                           "--tracking-uri", server.uri, *args], cwd=tmp_path, capture_output=True, text=True,
                          timeout=timeout, env={**clean, "PYTHONPATH": str(REPO), **env})


def one_line_refusal(result) -> str:
    assert result.returncode == 2, result.stderr[-3000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr[-3000:]
    return lines[0]


TINY_SPACE = """
    family: diffusion
    parameters:
      schedule: {values: [linear, cosine]}
"""


def test_the_password_stays_private_and_anonymous_or_wrong_credentials_are_refused(tmp_path, server):
    secret = server.root / "mlflow" / "admin_password"
    credentials = server.home / ".mlflow" / "credentials"
    for path in (secret, credentials):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert server.password in credentials.read_text() and len(server.password) >= 24
    assert server.password not in (server.root / "mlflow" / "basic_auth.ini").read_text()
    assert server.password not in (server.root / "mlflow-server.log").read_text()

    assert server.request("POST", "experiments/search", json={"max_results": 1}).status_code == 401
    assert server.request("POST", "experiments/search", json={"max_results": 1},
                          auth=("admin", server.password)).status_code == 200

    write_space(tmp_path, TINY_SPACE, iterations=2)
    nobody = one_line_refusal(sweep(tmp_path, server, {"HOME": str(tmp_path)}))
    assert "asks for credentials (HTTP 401)" in nobody and "MLFLOW_TRACKING_USERNAME" in nobody
    wrong = one_line_refusal(sweep(tmp_path, server, {"MLFLOW_TRACKING_USERNAME": "admin",
                                                      "MLFLOW_TRACKING_PASSWORD": "not-" + server.password}))
    assert "refused user 'admin' (HTTP 401)" in wrong
    assert not (tmp_path / "ray_results").exists()


@pytest.mark.slow
@pytest.mark.long
def test_a_sweep_with_the_credentials_file_finishes_and_another_user_cannot_write_to_it(tmp_path, server):
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    write_space(tmp_path, TINY_SPACE, iterations=2)
    # the credentials file the server's setup wrote, as on the head: no MLFLOW_TRACKING_* variables
    done = sweep(tmp_path, server, {"HOME": str(server.home)}, "--experiment", "secured")
    assert done.returncode == 0, done.stderr[-3000:]
    assert server.password not in done.stdout + done.stderr
    admin = ("admin", server.password)
    experiment = server.request("GET", "experiments/get-by-name", auth=admin,
                                params={"experiment_name": "secured"}).json()["experiment"]
    runs = server.request("POST", "runs/search", auth=admin,
                          json={"experiment_ids": [experiment["experiment_id"]]}).json()["runs"]
    children = [r for r in runs if any(t["key"] == "mlflow.parentRunId" for t in r["data"].get("tags", []))]
    assert sorted(r["info"]["status"] for r in children) == ["FINISHED", "FINISHED"]
    assert all(any(m["key"] == "eval/fid" for m in r["data"]["metrics"]) for r in children)

    assert server.request("POST", "users/create", auth=admin,
                          json={"username": "bob", "password": "bob-password-123456"}).status_code == 200
    bob = {"MLFLOW_TRACKING_USERNAME": "bob", "MLFLOW_TRACKING_PASSWORD": "bob-password-123456"}
    os.environ.update(bob)
    try:
        client = MlflowClient(server.uri)
        assert len(client.search_runs([experiment["experiment_id"]])) == len(runs)  # READ: bob may look
        with pytest.raises(MlflowException) as denied:
            client.create_run(experiment["experiment_id"])
        assert denied.value.error_code == "PERMISSION_DENIED"
    finally:
        for key in bob:
            os.environ.pop(key)
    refused = one_line_refusal(sweep(tmp_path, server, bob, "--experiment", "secured"))
    assert "does not let user 'bob' write to experiment 'secured'" in refused
    after = server.request("POST", "runs/search", auth=admin, json={"experiment_ids": [experiment["experiment_id"]]})
    assert len(after.json()["runs"]) == len(runs)  # nothing was written
