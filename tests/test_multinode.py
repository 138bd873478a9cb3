"""A real multi-node Ray cluster on one machine (a head and a worker node started with `ray start`):
a sweep spreads across both nodes, the worker node is killed mid-sweep, and the sweep still finishes
with every trial's results in MLflow."""

import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time

import pytest

from conftest import REPO, free_port

pytestmark = [pytest.mark.slow, pytest.mark.long]


# Ray 2.60 enables token authentication: every node and the driver must present the same token.
TOKEN_ENV = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}


def ray_start(args: list[str], log) -> subprocess.Popen:
    """`ray start --block` in its own process group, so the node can be ended by PID with its children."""
    ray = os.path.join(os.path.dirname(sys.executable), "ray")
    return subprocess.Popen([ray, "start", "--block", "--disable-usage-stats", *args], stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True, env={**os.environ, **TOKEN_ENV})


def wait_for_start(log_path, deadline: float) -> None:
    while "Ray runtime started" not in log_path.read_text():
        assert time.time() < deadline, f"ray start did not finish: {log_path.read_text()[-2000:]}"
        time.sleep(0.5)


def alive_nodes(address: str) -> list[str]:
    code = ("import ray; ray.init(address=%r, logging_level='ERROR'); "
            "print(','.join(n['NodeID'] for n in ray.nodes() if n['Alive']))" % address)
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                             env={**os.environ, **TOKEN_ENV})
    except subprocess.TimeoutExpired:
        return []
    return [n for n in out.stdout.strip().splitlines()[-1].split(",") if n] if out.returncode == 0 else []


def kill_group(process: subprocess.Popen, sig=signal.SIGKILL) -> None:
    """End a node: its `ray start` process and every daemon it started (same process group)."""
    try:
        os.killpg(process.pid, sig)
        if sig != signal.SIGKILL:
            time.sleep(3)
            os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(timeout=60)


@pytest.fixture
def cluster(tmp_path):
    from ray._private.services import get_node_ip_address

    port = free_port()
    address = f"{get_node_ip_address()}:{port}"  # the GCS listens on the node's address, not loopback
    logs = [open(tmp_path / f"{name}.log", "w") for name in ("head", "worker")]
    temp_dir = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # Ray's unix socket paths must stay under 107 bytes
    head = ray_start(["--head", f"--port={port}", "--num-cpus=1", "--include-dashboard=false",
                      f"--temp-dir={temp_dir}"], logs[0])
    worker = None
    try:
        deadline = time.time() + 180
        wait_for_start(tmp_path / "head.log", deadline)
        head_node = alive_nodes(address)[0]
        worker = ray_start([f"--address={address}", "--num-cpus=1"], logs[1])
        wait_for_start(tmp_path / "worker.log", deadline)
        while len(alive_nodes(address)) < 2 and time.time() < deadline:
            time.sleep(1)
        nodes = alive_nodes(address)
        assert len(nodes) == 2, "the worker node did not join"
        yield {"address": address, "head_node": head_node, "worker_node": next(n for n in nodes if n != head_node),
               "worker": worker}
    finally:
        for process in (worker, head):
            if process is not None:
                kill_group(process, signal.SIGTERM)
        for log in logs:
            log.close()
        shutil.rmtree(temp_dir, ignore_errors=True)


def test_sweep_survives_losing_a_worker_node(tmp_path, cluster, mlflow_server):
    (tmp_path / "search_spaces").mkdir()
    (tmp_path / "search_spaces" / "spread.yaml").write_text(textwrap.dedent(f"""
        family: diffusion
        parameters:
          schedule: {{values: [linear, cosine, sigmoid]}}
          timesteps: {{value: 50}}
          iterations: {{value: 8}}
          steps_per_iteration: {{value: 40}}
          batch_size: {{value: 32}}
          base_channels: {{value: 8}}
          eval_samples: {{value: 100}}
          sample_steps: {{value: 10}}
          cache_dir: {{value: "{tmp_path / 'cache'}"}}
    """))
    args = ["spread", "--address", cluster["address"], "--tracking-uri", mlflow_server.uri,
            "--experiment", "multinode", "--max-failures", "3"]
    env = {**os.environ, "PYTHONPATH": str(REPO), **TOKEN_ENV}
    sweep = subprocess.Popen([sys.executable, "-m", "orchestration.sweep", *args], cwd=tmp_path, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    client = mlflow_server.client()
    deadline = time.time() + 300
    killed = False
    while time.time() < deadline and not killed:  # kill the worker mid-trial, once a trial there has trained
        experiment = client.get_experiment_by_name("multinode")
        if experiment:
            on_worker = client.search_runs(
                [experiment.experiment_id], f"tags.`ray.node_id` = '{cluster['worker_node']}' "
                                            "and metrics.`train/loss` > 0 and attributes.status = 'RUNNING'")
            if on_worker:
                kill_group(cluster["worker"])
                killed = True
        time.sleep(0.5)
    assert killed, "no trial ran on the worker node"
    out, err = sweep.communicate(timeout=600)
    assert sweep.returncode == 0, err[-4000:]

    parent = [r for r in client.search_runs([experiment.experiment_id]) if "mlflow.parentRunId" not in r.data.tags]
    runs = client.search_runs([experiment.experiment_id],
                              f"tags.`mlflow.parentRunId` = '{parent[0].info.run_id}'")
    assert sorted(r.data.params["schedule"] for r in runs) == ["cosine", "linear", "sigmoid"]
    for run in runs:
        assert run.info.status == "FINISHED"
        assert sorted({m.step for m in client.get_metric_history(run.info.run_id, "train/loss")}) == list(range(1, 9))
        assert "samples.png" in {a.path for a in client.list_artifacts(run.info.run_id)}
    retried = [r for r in runs if r.data.tags.get("sweep.retries")]
    assert retried and all(r.data.tags["ray.node_id"] == cluster["head_node"] for r in retried), \
        "the trial lost with the worker node was retried on the head"
