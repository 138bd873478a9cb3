"""A real multi-node Ray cluster on one machine (a head and a worker node started with `ray start`):
a sweep spreads across both nodes, the worker node is killed mid-sweep, and the sweep still finishes
with every trial's results in MLflow. With declared GPUs (`ray start --num-gpus 1`, which Ray schedules
as it would a real card), trials pack by their GPU share on both nodes."""

import contextlib
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
from test_gpu_placement import most_at_once

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


@contextlib.contextmanager
def two_node_cluster(tmp_path, node_args: list[str]):
    """A head and a worker node, each started with `node_args` (their CPUs, declared GPUs)."""
    from ray._private.services import get_node_ip_address

    port = free_port()
    address = f"{get_node_ip_address()}:{port}"  # the GCS listens on the node's address, not loopback
    logs = [open(tmp_path / f"{name}.log", "w") for name in ("head", "worker")]
    temp_dir = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # Ray's unix socket paths must stay under 107 bytes
    head = ray_start(["--head", f"--port={port}", *node_args, "--include-dashboard=false",
                      f"--temp-dir={temp_dir}"], logs[0])
    worker = None
    try:
        deadline = time.time() + 180
        wait_for_start(tmp_path / "head.log", deadline)
        head_node = alive_nodes(address)[0]
        worker = ray_start([f"--address={address}", *node_args], logs[1])
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


@pytest.fixture
def cluster(tmp_path):
    with two_node_cluster(tmp_path, ["--num-cpus=1"]) as nodes:
        yield nodes


@pytest.fixture
def gpu_cluster(tmp_path):
    """Two nodes that declare one GPU each and CPUs for 8 trials: only the GPUs limit how many run."""
    with two_node_cluster(tmp_path, ["--num-cpus=8", "--num-gpus=1"]) as nodes:
        yield nodes


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


def run_sweep(tmp_path, name: str, space: str, args: list[str], address: str, timeout: float = 600):
    (tmp_path / "search_spaces").mkdir(exist_ok=True)
    (tmp_path / "search_spaces" / f"{name}.yaml").write_text(textwrap.dedent(space))
    env = {**os.environ, "PYTHONPATH": str(REPO), **TOKEN_ENV}
    return subprocess.run([sys.executable, "-m", "orchestration.sweep", name, "--address", address, *args],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=timeout)


def test_trials_pack_four_to_each_declared_gpu(tmp_path, gpu_cluster, mlflow_server):
    """8 diffusion trials at the family's share (0.25) on two 1-GPU nodes: all 8 at once, never more than
    4 on a node (its CPUs would hold 8), each run with the GPU id and share Ray gave it."""
    result = run_sweep(tmp_path, "packing", f"""
        family: diffusion
        parameters:
          schedule: {{values: [linear, cosine, sigmoid, quadratic]}}
          timesteps: {{values: [50, 60]}}
          iterations: {{value: 4}}
          steps_per_iteration: {{value: 60}}
          batch_size: {{value: 32}}
          base_channels: {{value: 8}}
          eval_samples: {{value: 64}}
          sample_steps: {{value: 5}}
          cache_dir: {{value: "{tmp_path / 'cache'}"}}
    """, ["--tracking-uri", mlflow_server.uri, "--experiment", "packing", "--cpu-fallback", "--verbose", "0"],
        gpu_cluster["address"])
    assert result.returncode == 0, result.stderr[-4000:]
    assert "1 CPU + 0.25 GPU per trial on 16 CPU / 2 GPU" in result.stdout
    client = mlflow_server.client()
    experiment = client.get_experiment_by_name("packing")
    runs = [r for r in client.search_runs([experiment.experiment_id]) if "mlflow.parentRunId" in r.data.tags]
    assert len(runs) == 8 and all(r.info.status == "FINISHED" for r in runs)
    by_node = {node: [r for r in runs if r.data.tags["ray.node_id"] == node]
               for node in (gpu_cluster["head_node"], gpu_cluster["worker_node"])}
    assert [len(node_runs) for node_runs in by_node.values()] == [4, 4]
    assert [most_at_once(node_runs) for node_runs in by_node.values()] == [4, 4]
    assert most_at_once(runs) == 8, [(r.info.start_time, r.info.end_time) for r in runs]
    for run in runs:
        tags = run.data.tags
        assert (tags["device.ray_gpu_ids"], tags["device.ray_gpu_share"], tags["device.cuda_visible_devices"]) == \
            ("0", "0.25", "0")
        assert (tags["device.cpu_fallback"], tags["device.torch"]) == ("true", "cpu")


def test_rl_trials_take_half_a_declared_gpu_each(tmp_path, gpu_cluster, mlflow_server):
    """RL's share is 0.5: two trials per GPU node; with --cpu-fallback the Learner trains on the CPU."""
    result = run_sweep(tmp_path, "rl_gpu", """
        family: rl
        parameters:
          algorithm: {values: [dqn, a2c]}
          env: {value: CartPole-v1}
    """, ["--smoke", "--tracking-uri", mlflow_server.uri, "--experiment", "rl_gpu", "--cpu-fallback",
          "--verbose", "0"], gpu_cluster["address"])
    assert result.returncode == 0, result.stderr[-4000:]
    assert "0.5 GPU per trial" in result.stdout
    client = mlflow_server.client()
    experiment = client.get_experiment_by_name("rl_gpu")
    runs = [r for r in client.search_runs([experiment.experiment_id]) if "mlflow.parentRunId" in r.data.tags]
    assert sorted(r.data.params["algorithm"] for r in runs) == ["a2c", "dqn"]
    for run in runs:
        assert run.info.status == "FINISHED"
        tags = run.data.tags
        assert (tags["device.ray_gpu_share"], tags["device.cpu_fallback"], tags["device.torch"]) == \
            ("0.5", "true", "cpu")


def test_a_race_spreads_its_seeds_over_the_nodes_of_a_cluster(tmp_path, cluster, mlflow_server):
    """`--address` with `race:`: the race's slots are the trials the live nodes hold (1 CPU each: 2), and
    its trials run on both nodes."""
    result = run_sweep(tmp_path, "raced", f"""
        family: diffusion
        metric: {{name: train/loss, goal: minimize}}
        race: {{first_seeds: 2, max_seeds: 3}}
        parameters:
          lr: {{values: [0.003, 1.0e-7]}}
          timesteps: {{value: 50}}
          iterations: {{value: 2}}
          steps_per_iteration: {{value: 15}}
          batch_size: {{value: 32}}
          base_channels: {{value: 8}}
          eval_samples: {{value: 100}}
          sample_steps: {{value: 10}}
          cache_dir: {{value: "{tmp_path / 'cache'}"}}
    """, ["--tracking-uri", mlflow_server.uri, "--experiment", "raced-cluster"], cluster["address"])
    assert result.returncode == 0, result.stderr[-4000:]
    assert "on 2 trial slots: workers busy" in result.stdout and "[race] " in result.stdout
    client = mlflow_server.client()
    experiment = client.get_experiment_by_name("raced-cluster")
    runs = [r for r in client.search_runs([experiment.experiment_id]) if "mlflow.parentRunId" in r.data.tags]
    assert {r.data.tags["ray.node_id"] for r in runs} == {cluster["head_node"], cluster["worker_node"]}
    assert sorted((r.data.params["lr"], r.data.params["seed"]) for r in runs)[:3] == [
        ("0.003", "0"), ("0.003", "1"), ("0.003", "2")], "the learner raced on to max_seeds"
