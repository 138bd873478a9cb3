"""GPUs as Ray schedules them, on a CPU machine: Ray hands out the GPUs a node declares
(`--num-gpus`) whether or not they exist, so trial packing by GPU share, the ids each trial is given
and the device policy run for real here. Torch sees no CUDA, which is exactly the broken-node case
the policy must catch; `--cpu-fallback` lets the packing tests train anyway, and says so on each run."""

import textwrap

import pytest

from conftest import run_cli
from orchestration.errors import SweepError
from orchestration.resources import ClusterShape, check_cuda_requests
from orchestration.search_space import load_sweep

pytestmark = pytest.mark.slow


def tiny_sweep(tmp_path, schedules=("linear",), steps=10, iterations=2, extra="") -> None:
    (tmp_path / "search_spaces").mkdir(exist_ok=True)
    (tmp_path / "search_spaces" / "tiny.yaml").write_text(textwrap.dedent(f"""
        family: diffusion
        parameters:
          schedule: {{values: [{", ".join(schedules)}]}}
          timesteps: {{value: 50}}
          iterations: {{value: {iterations}}}
          steps_per_iteration: {{value: {steps}}}
          batch_size: {{value: 32}}
          base_channels: {{value: 8}}
          eval_samples: {{value: 64}}
          sample_steps: {{value: 5}}
          cache_dir: {{value: "{tmp_path / 'cache'}"}}
    """) + extra)


def child_runs(uri: str, experiment: str):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id])
    return client, [r for r in runs if "mlflow.parentRunId" in r.data.tags], \
        [r for r in runs if "mlflow.parentRunId" not in r.data.tags]


def most_at_once(runs) -> int:
    """The largest number of runs alive at one moment, from their MLflow start and end times."""
    events = sorted([(r.info.start_time, 1) for r in runs] + [(r.info.end_time, -1) for r in runs],
                    key=lambda e: (e[0], e[1]))  # an end before a start at the same millisecond
    alive = peak = 0
    for _, change in events:
        alive += change
        peak = max(peak, alive)
    return peak


def test_a_trial_given_a_gpu_torch_cannot_see_fails_at_once_naming_the_node(tmp_path):
    tiny_sweep(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = run_cli(["tiny", "--num-cpus", "2", "--num-gpus", "1", "--max-failures", "0", "--tracking-uri", uri,
                      "--verbose", "0"], tmp_path, timeout=300)
    assert result.returncode == 1, result.stderr[-3000:]
    lines = [line for line in result.stderr.splitlines() if line.startswith("[sweep] failed")]
    assert len(lines) == 1, result.stderr[-3000:]
    assert "GPUUnusable: node " in lines[0] and "gave this trial GPU 0 but torch" in lines[0]
    assert "sees no CUDA device" in lines[0] and "--cpu-fallback" in lines[0]
    client, [run], _ = child_runs(uri, "tiny")
    assert run.info.status == "FAILED"
    assert run.data.tags["device.ray_gpu_ids"] == "0" and run.data.tags["device.cuda_visible_devices"] == "0"
    assert "device.cpu_fallback" not in run.data.tags
    assert not client.get_metric_history(run.info.run_id, "train/loss"), "it failed before training"


@pytest.mark.long  # for time: the two-node declared-GPU tests (test_multinode.py, long) also check packing
def test_gpu_shares_pack_trials_and_each_run_records_its_gpu(tmp_path):
    """One declared GPU, 4 CPUs and --gpus-per-trial 0.5: the CPUs would hold 4 trials, the GPU holds 2."""
    tiny_sweep(tmp_path, schedules=("linear", "cosine", "sigmoid", "quadratic"), steps=20, iterations=3)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"  # a store other than the default: the best model still registers
    result = run_cli(["tiny", "--num-cpus", "4", "--num-gpus", "1", "--gpus-per-trial", "0.5", "--cpu-fallback",
                      "--tracking-uri", uri, "--verbose", "0"], tmp_path, timeout=400)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "0.5 GPU per trial on 4 CPU / 1 GPU" in result.stdout
    assert "registered model 'tiny' version 1" in result.stdout, result.stdout[-2000:]
    _, runs, [parent] = child_runs(uri, "tiny")
    assert len(runs) == 4 and all(r.info.status == "FINISHED" for r in runs)
    assert most_at_once(runs) == 2, [(r.info.start_time, r.info.end_time) for r in runs]
    for run in runs:
        tags = run.data.tags
        assert (tags["device.ray_gpu_ids"], tags["device.ray_gpu_share"]) == ("0", "0.5")
        assert tags["device.cuda_visible_devices"] == "0"
        assert (tags["device.cpu_fallback"], tags["device.torch"]) == ("true", "cpu")
    assert parent.data.params["gpus_per_trial"] == "0.5" and parent.data.params["cpu_fallback"] == "True"


def test_device_cuda_without_a_gpu_is_refused_before_ray_starts(tmp_path):
    tiny_sweep(tmp_path)
    result = run_cli(["tiny", "--set", "device=cuda", "--num-gpus", "1", "--tracking-uri",
                      f"sqlite:///{tmp_path / 'mlflow.db'}"], tmp_path, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip() == ("error: device: cuda, but this machine has no CUDA GPU torch can use; set device "
                                     "auto or cpu, or send the sweep to a cluster with GPUs (--address)")
    assert not (tmp_path / "mlflow.db").exists() and "[sweep]" not in result.stdout, "nothing started"


def test_device_cuda_is_checked_against_the_clusters_gpus(tmp_path):
    tiny_sweep(tmp_path, extra="  device: {values: [cpu, cuda]}\n")
    spec = load_sweep(str(tmp_path / "search_spaces" / "tiny.yaml"))
    cpu_only = ClusterShape([{"CPU": 8}], [], autoscaling=False)
    with pytest.raises(SweepError, match="no node of this cluster has a GPU"):
        check_cuda_requests(spec, cpu_only, 0.25)
    gpu_workers = ClusterShape([{"CPU": 8}], [{"CPU": 8, "GPU": 1}], autoscaling=True)  # the autoscaler adds them
    check_cuda_requests(spec, gpu_workers, 0.25)
    with pytest.raises(SweepError, match="trials get no GPU"):
        check_cuda_requests(spec, gpu_workers, 0.0)
    auto_only = load_sweep(str(tmp_path / "search_spaces" / "tiny.yaml")).with_overrides({"device": "auto"})
    check_cuda_requests(auto_only, cpu_only, 0.0)


LEARNER_SHARE = """
import json, sys
from unittest import mock
import ray, torch

ray.init(num_cpus=1, num_gpus=1, include_dashboard=False, log_to_driver=False)


@ray.remote(num_cpus=0, num_gpus=0.5)
class TrialLikeActor:  # holds half of the GPU, as an RL trial does by default
    def learner_gpus(self, torch_sees_cuda):
        from algorithms.rl import FAMILY
        from algorithms.rl.experiment import build_config

        # torch's CUDA probe answers as on a GPU node; Ray's assignment is real
        with mock.patch.object(torch.cuda, "is_available", return_value=torch_sees_cuda):
            return build_config(FAMILY.resolve({})).num_gpus_per_learner


actor = TrialLikeActor.remote()
print(json.dumps([ray.get(actor.learner_gpus.remote(True)), ray.get(actor.learner_gpus.remote(False))]))
"""


def test_the_rl_learner_takes_the_trials_gpu_share():
    """In a process of its own: a second Ray instance in the test process would leave Tune's registry pointing
    at the first (test_rl_algorithms registers envs there)."""
    import json
    import os
    import subprocess
    import sys

    from conftest import REPO

    out = subprocess.run([sys.executable, "-c", LEARNER_SHARE], capture_output=True, text=True, timeout=180,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    assert out.returncode == 0, out.stderr[-2000:]
    with_cuda, without = json.loads(out.stdout.strip().splitlines()[-1])
    assert with_cuda == 0.5, "the Learner takes the trial's share of the GPU"
    assert without == 0, "no CUDA: the Learner trains on the CPU"


@pytest.mark.parametrize("argv,message", [
    (["tiny", "--address", "auto", "--num-gpus", "1"], "--num-cpus and --num-gpus size a new local Ray instance"),
    (["tiny", "--num-gpus", "-1"], "--num-gpus must be >= 0, got -1.0"),
])
def test_gpu_options_are_checked_before_anything_starts(argv, message):
    from orchestration.sweep import _check_options, parse_args

    with pytest.raises(SweepError, match=message):
        _check_options(parse_args(argv))
