"""A sweep whose trials can never start on the cluster as it is stops after --stall-timeout, says so in
one line, leaves its parent run FAILED with the reason, and finishes with --resume once the cluster
has room: every metric step exactly once."""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time

import pytest

from conftest import free_port, run_cli
from test_multinode import TOKEN_ENV, alive_nodes, kill_group, ray_start, wait_for_start

pytestmark = [pytest.mark.slow, pytest.mark.long]

# another user's job holding the only CPU of the cluster for as long as its driver lives
BLOCKER = """
import time, ray
ray.init(address={address!r}, logging_level="ERROR")
@ray.remote(num_cpus=1)
class Holder:
    def ready(self):
        return True
holder = Holder.remote()
ray.get(holder.ready.remote())
print("holding", flush=True)
time.sleep(3600)
"""


@pytest.fixture
def one_cpu_cluster(tmp_path):
    from ray._private.services import get_node_ip_address

    address = f"{get_node_ip_address()}:{free_port()}"
    temp_dir = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # Ray's unix socket paths must stay under 107 bytes
    with open(tmp_path / "head.log", "w") as log:
        head = ray_start(["--head", f"--port={address.split(':')[1]}", "--num-cpus=1", "--include-dashboard=false",
                          f"--temp-dir={temp_dir}"], log)
        try:
            wait_for_start(tmp_path / "head.log", time.time() + 180)
            assert alive_nodes(address)
            yield address
        finally:
            kill_group(head, signal.SIGTERM)
            shutil.rmtree(temp_dir, ignore_errors=True)


def test_a_sweep_that_cannot_start_stops_resumably(tmp_path, one_cpu_cluster, mlflow_server):
    (tmp_path / "search_spaces").mkdir()
    (tmp_path / "search_spaces" / "tiny.yaml").write_text(textwrap.dedent(f"""
        family: diffusion
        parameters:
          timesteps: {{value: 50}}
          iterations: {{value: 2}}
          steps_per_iteration: {{value: 10}}
          batch_size: {{value: 32}}
          base_channels: {{value: 8}}
          eval_samples: {{value: 64}}
          sample_steps: {{value: 5}}
          cache_dir: {{value: "{tmp_path / 'cache'}"}}
    """))
    blocker = subprocess.Popen([sys.executable, "-c", BLOCKER.format(address=one_cpu_cluster)], text=True,
                               stdout=subprocess.PIPE, env={**os.environ, **TOKEN_ENV}, start_new_session=True)
    try:
        assert blocker.stdout.readline().strip() == "holding"
        args = ["tiny", "--address", one_cpu_cluster, "--tracking-uri", mlflow_server.uri, "--experiment", "stall",
                "--name", "stall-me", "--stall-timeout", "15"]
        start = time.time()
        stalled = run_cli(args, cwd=tmp_path, env=TOKEN_ENV, timeout=300)
        assert stalled.returncode == 3, stalled.stderr[-3000:]
        assert time.time() - start < 120
        lines = [line for line in stalled.stderr.splitlines() if line.startswith("[sweep] stalled")]
        assert len(lines) == 1 and "no trial could start for" in lines[0], stalled.stderr[-3000:]
        assert lines[0].endswith("--name stall-me --resume") and "Traceback" not in stalled.stderr
    finally:
        kill_group(blocker)

    client = mlflow_server.client()
    experiment = client.get_experiment_by_name("stall")
    parent = [r for r in client.search_runs([experiment.experiment_id]) if "mlflow.parentRunId" not in r.data.tags][0]
    assert parent.info.status == "FAILED" and "no trial could start" in parent.data.tags["sweep.stalled"]

    resumed = run_cli([*args, "--resume"], cwd=tmp_path, env=TOKEN_ENV, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    runs = client.search_runs([experiment.experiment_id], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    assert sorted(m.step for m in client.get_metric_history(runs[0].info.run_id, "train/loss")) == [1, 2]
    assert client.get_run(parent.info.run_id).info.status == "FINISHED"
