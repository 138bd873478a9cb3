"""A real multi-node Ray cluster on one machine (a head and a worker node started with `ray start`):
a sweep spreads across both nodes, the worker node is killed mid-sweep, and the sweep still finishes
with every trial's results in MLflow. With declared GPUs (`ray start --num-gpus 1`, which Ray schedules
as it would a real card), trials pack by their GPU share on both nodes."""

import contextlib
import json
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
def local_cluster(tmp_path, node_args: list[str], workers: int = 1):
    """A head and `workers` worker nodes, each started with `node_args` (their CPUs, declared GPUs) and
    each with its own temp dir, as separate machines have."""
    from ray._private.services import get_node_ip_address

    port = free_port()
    address = f"{get_node_ip_address()}:{port}"  # the GCS listens on the node's address, not loopback
    names = ["head", *(f"worker{i}" for i in range(1, workers + 1))]
    logs = [open(tmp_path / f"{name}.log", "w") for name in names]
    temp_dirs = [tempfile.mkdtemp(prefix="ray", dir="/tmp") for _ in names]  # unix socket paths stay < 107 bytes
    head = ray_start(["--head", f"--port={port}", *node_args, "--include-dashboard=false",
                      f"--temp-dir={temp_dirs[0]}"], logs[0])
    started = []
    try:
        deadline = time.time() + 180
        wait_for_start(tmp_path / "head.log", deadline)
        head_node = alive_nodes(address)[0]
        for name, log, temp_dir in zip(names[1:], logs[1:], temp_dirs[1:]):
            started.append(ray_start([f"--address={address}", *node_args, f"--temp-dir={temp_dir}"], log))
            wait_for_start(tmp_path / f"{name}.log", deadline)
        while len(alive_nodes(address)) < len(names) and time.time() < deadline:
            time.sleep(1)
        nodes = alive_nodes(address)
        assert len(nodes) == len(names), "the worker nodes did not join"
        worker_nodes = [n for n in nodes if n != head_node]
        yield {"address": address, "head_node": head_node, "worker_node": worker_nodes[0],
               "worker_nodes": worker_nodes, "worker": started[0], "workers": started}
    finally:
        for process in [*started, head]:
            kill_group(process, signal.SIGTERM)
        for log in logs:
            log.close()
        for temp_dir in temp_dirs:
            shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.fixture
def cluster(tmp_path):
    with local_cluster(tmp_path, ["--num-cpus=1"]) as nodes:
        yield nodes


@pytest.fixture
def gpu_cluster(tmp_path):
    """Two nodes that declare one GPU each and CPUs for 8 trials: only the GPUs limit how many run."""
    with local_cluster(tmp_path, ["--num-cpus=8", "--num-gpus=1"]) as nodes:
        yield nodes


LOST_NODE_SPACE = """
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
      cache_dir: {{value: "{cache}"}}
"""


def test_a_deployed_cluster_loses_a_node_and_nothing_else(tmp_path, artifact_dir):
    """The cluster as cluster.yaml deploys it, on one machine: 3 nodes, checkpoints in S3, an authenticated
    tracking server. One worker's raylet is killed (by its PID) mid-sweep: its trial continues on another
    node from its last checkpoint in the bucket, every metric step is stored once, the output names the
    node and the trial, and the answer is that of an undisturbed sweep with the same seeds. The nodes are
    given neither the S3 nor the MLflow credentials: the sweep hands them over."""
    import psutil
    import requests
    from mlflow.tracking import MlflowClient

    from object_store import S3Server
    from test_tracking_auth import AuthServer

    s3, auth = S3Server(tmp_path), AuthServer(tmp_path)
    try:
        bucket = s3.create_bucket("cluster")
        (tmp_path / "search_spaces").mkdir()
        (tmp_path / "search_spaces" / "spread.yaml").write_text(
            textwrap.dedent(LOST_NODE_SPACE.format(cache=tmp_path / "cache")))
        with local_cluster(tmp_path, ["--num-cpus=1"], workers=2) as nodes:
            env = {**os.environ, "PYTHONPATH": str(REPO), **TOKEN_ENV, **s3.env,
                   "MLFLOW_TRACKING_USERNAME": "admin", "MLFLOW_TRACKING_PASSWORD": auth.password}

            def sweep(experiment: str, out):
                return subprocess.Popen(
                    [sys.executable, "-m", "orchestration.sweep", "spread", "--address", nodes["address"],
                     "--tracking-uri", auth.uri, "--experiment", experiment, "--max-failures", "3",
                     "--storage-path", f"s3://{bucket}/ray_results"],
                    cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT, text=True)

            with open(tmp_path / "calm.txt", "w") as out:
                assert sweep("calm", out).wait(timeout=600) == 0, (tmp_path / "calm.txt").read_text()[-4000:]

            os.environ.update(MLFLOW_TRACKING_USERNAME="admin", MLFLOW_TRACKING_PASSWORD=auth.password)
            client = MlflowClient(auth.uri)
            with open(tmp_path / "lost.txt", "w") as out:
                disturbed = sweep("lost", out)
                deadline, victim = time.time() + 300, None
                while victim is None and time.time() < deadline:  # a trial on a worker with a checkpoint
                    experiment = client.get_experiment_by_name("lost")
                    on_workers = experiment and client.search_runs(
                        [experiment.experiment_id], f"tags.`ray.node_id` != '{nodes['head_node']}' and "
                        "metrics.`train/loss` > 0 and attributes.status = 'RUNNING'")
                    for run in on_workers or []:
                        history = client.get_metric_history(run.info.run_id, "train/loss")
                        if len(history) >= 2:
                            victim = run
                            break
                    time.sleep(0.5)
                assert victim, "no trial ran on a worker node"
                lost_node = victim.data.tags["ray.node_id"]
                raylet = psutil.Process(int(victim.data.tags["pid"])).parent()
                assert raylet.name() == "raylet", raylet.name()
                killed_at = time.time()
                raylet.kill()
                while lost_node in alive_nodes(nodes["address"]):
                    time.sleep(0.5)
                noticed_s = time.time() - killed_at
                assert disturbed.wait(timeout=600) == 0, (tmp_path / "lost.txt").read_text()[-4000:]
            output = (tmp_path / "lost.txt").read_text()
            (artifact_dir / "lost_node_output.txt").write_text(output)
            (artifact_dir / "lost_node.json").write_text(json.dumps({"ray_noticed_lost_node_s": round(noticed_s, 1)}))
            print(f"Ray declared the node dead {noticed_s:.1f} s after its raylet was killed")

        assert "[cluster] lost node" in output and f"({lost_node[:8]})" in output, output[-4000:]
        moved = [line for line in output.splitlines() if "moved from lost node" in line]
        assert moved and f"schedule={victim.data.params['schedule']}" in moved[0], output[-4000:]
        assert int(moved[0].rsplit(" ", 1)[1]) >= 2, moved  # from a checkpoint, not from the start

        answers = {}
        for name in ("calm", "lost"):
            experiment = client.get_experiment_by_name(name)
            parent = client.search_runs([experiment.experiment_id], "tags.`sweep.name` = 'spread'")[0]
            runs = client.search_runs([experiment.experiment_id],
                                      f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
            assert sorted(r.data.params["schedule"] for r in runs) == ["cosine", "linear", "sigmoid"]
            for run in runs:
                assert run.info.status == "FINISHED"
                for metric in ("train/loss", "eval/fid"):
                    steps = [m.step for m in client.get_metric_history(run.info.run_id, metric)]
                    assert len(steps) == len(set(steps)), (name, metric, sorted(steps))  # each step once
                assert sorted({m.step for m in client.get_metric_history(run.info.run_id, "train/loss")}) == \
                    list(range(1, 9))
            answers[name] = (parent.data.tags["sweep.best_config_id"], parent.data.tags["sweep.tied_config_ids"],
                             {r.data.params["schedule"]: r.data.metrics["eval/fid"] for r in runs})
        moved_run = client.get_run(victim.info.run_id)
        assert moved_run.data.tags["ray.node_id"] != lost_node and moved_run.data.tags.get("sweep.retries")
        assert answers["lost"][:2] == answers["calm"][:2], answers
        # trials are deterministic on a CPU and a restore reseeds by step: the moved trial's numbers are the same
        assert answers["lost"][2] == pytest.approx(answers["calm"][2], rel=1e-6), answers
        (artifact_dir / "lost_node.json").write_text(json.dumps({
            "ray_noticed_lost_node_s": round(noticed_s, 1), "fid_calm": answers["calm"][2],
            "fid_lost": answers["lost"][2]}))
        assert any("/checkpoint_" in key for key in s3.keys(bucket, "ray_results/spread-"))
        assert requests.post(f"{auth.uri}/api/2.0/mlflow/experiments/search", json={}).status_code == 401
    finally:
        for key in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
            os.environ.pop(key, None)
        auth.stop()
        s3.stop()


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
