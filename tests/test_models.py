"""What a sweep leaves to use, against a real MLflow server: an MLflow model per trial, the best one
registered under the sweep's name with alias `best`, loadable in a fresh process; the `use` command
for every family; system metrics on every trial; a model-training experiment. The sweeps are --smoke
sweeps of two configurations each."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from conftest import REPO, run_cli
from orchestration.registry import ALIAS, Candidate, register

pytestmark = pytest.mark.slow

SPACES = {  # two configurations each; --smoke sets the budget
    "diffusion": """
        family: diffusion
        parameters:
          schedule: {{values: [linear, cosine]}}
          timesteps: {{value: 50}}
          batch_size: {{value: 32}}
          base_channels: {{value: 8}}
          cache_dir: {{value: "{cache}"}}
    """,
    "contrastive": """
        family: contrastive
        parameters:
          temperature: {{values: [0.1, 0.5]}}
    """,
    "rl": """
        family: rl
        parameters:
          algorithm: {{values: [dqn, a2c]}}
    """,
}


def sweep(tmp_path, mlflow_server, family: str, *extra: str):
    folder = tmp_path / "search_spaces"
    folder.mkdir(exist_ok=True)
    (folder / f"use-{family}.yaml").write_text(textwrap.dedent(SPACES[family].format(cache=tmp_path / "cache")))
    result = run_cli([f"use-{family}", "--smoke", "--num-cpus", "2", "--tracking-uri", mlflow_server.uri,
                      "--system-metrics-interval", "1", *extra], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Checkpoint successfully created" not in result.stdout + result.stderr, "Tune's per-checkpoint lines"
    return result


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory, mlflow_server):
    """One finished two-trial sweep per family: {family: (its folder, its CLI output)}."""
    out = {}
    for family in SPACES:
        folder = tmp_path_factory.mktemp(family)
        extra = ["--set", "evaluation_episodes=5"] if family == "rl" else []  # a CI from 5 episodes on
        out[family] = folder, sweep(folder, mlflow_server, family, *extra).stdout
    return out


def parent_and_children(client, name: str):
    experiment = client.get_experiment_by_name(name)
    runs = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id
                and "ray.trial_id" in r.data.tags]
    return experiment, parents[0], children


@pytest.mark.parametrize("family", list(SPACES))
def test_every_trial_logs_a_model_and_the_best_is_registered(sweeps, mlflow_server, family):
    client = mlflow_server.client()
    name = f"use-{family}"
    experiment, parent, children = parent_and_children(client, name)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    assert len(children) == 2
    for run in children:
        model_id = run.data.tags["sweep.model_uri"].removeprefix("models:/")
        model = client.get_logged_model(model_id)
        assert model.source_run_id == run.info.run_id and model.experiment_id == experiment.experiment_id
    best = client.get_model_version_by_alias(name, ALIAS)
    assert best.run_id == parent.data.tags["sweep.best_run_id"]
    assert best.source == client.get_run(best.run_id).data.tags["sweep.model_uri"]
    metric = parent.data.params["metric"]
    final = max(client.get_metric_history(best.run_id, metric), key=lambda m: m.step).value
    assert float(best.tags["sweep.score"]) == pytest.approx(final)
    assert f"registered model '{name}' version 1, alias 'best' (the first)" in sweeps[family][1]


def test_registered_models_load_and_predict_in_a_fresh_process(sweeps, mlflow_server, tmp_path):
    """Only mlflow and this package: no Tune state, another working directory."""
    code = textwrap.dedent("""
        import json, mlflow.pyfunc, mlflow.pytorch, numpy as np, pandas as pd
        out = {}
        sampler = mlflow.pyfunc.load_model("models:/use-diffusion@best")
        images = sampler.predict(pd.DataFrame({"num_samples": [3, 2], "seed": [5, 6], "sample_steps": [4, 4]}))
        again = sampler.predict(pd.DataFrame({"num_samples": [3], "seed": [5], "sample_steps": [4]}))
        out["diffusion"] = [list(images.shape), float(images.min()), float(images.max()),
                            bool(np.array_equal(images[:3], again)), sampler.metadata.metadata["family"]]
        encoder = mlflow.pyfunc.load_model("models:/use-contrastive@best")
        x = np.random.default_rng(0).uniform(-1, 1, (5, 1, 8, 8)).astype(np.float32)
        features = encoder.predict(x)
        import torch
        module = mlflow.pytorch.load_model("models:/use-contrastive@best")
        same = bool(torch.equal(module(torch.as_tensor(x)), torch.as_tensor(features)))
        out["contrastive"] = [list(features.shape), str(features.dtype), isinstance(module, torch.nn.Module), same]
        policy = mlflow.pyfunc.load_model("models:/use-rl@best")
        obs = np.random.default_rng(0).normal(0, 0.05, (7, 4)).astype(np.float32)
        actions = policy.predict(obs)
        out["rl"] = [list(actions.shape), str(actions.dtype), sorted(set(actions.tolist()) | {0, 1})]
        print(json.dumps(out))
    """)
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                            env={**env, "PYTHONPATH": str(REPO), "MLFLOW_TRACKING_URI": mlflow_server.uri})
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    shape, low, high, repeatable, family = out["diffusion"]
    assert shape == [5, 1, 8, 8] and 0 <= low <= high <= 1 and high > low and repeatable and family == "diffusion"
    assert out["contrastive"] == [[5, 128], "float32", True, True]
    assert out["rl"][:2] == [[7], "int64"] and out["rl"][2] == [0, 1]


def test_system_metrics_and_peak_memory_on_every_trial(sweeps, mlflow_server):
    client = mlflow_server.client()
    for family in SPACES:
        _, parent, children = parent_and_children(client, f"use-{family}")
        for run in children:
            metrics = run.data.metrics
            for key in ("system/cpu_utilization_percentage", "system/system_memory_usage_megabytes"):
                assert client.get_metric_history(run.info.run_id, key), (family, key)
            peaks = client.get_metric_history(run.info.run_id, "system/trial_peak_rss_megabytes")
            assert [m.step for m in peaks] == [1, 2], "one point per iteration"
            assert 100 < peaks[0].value <= peaks[1].value < metrics["system/system_memory_usage_megabytes"] + 1
        runs_csv = client.download_artifacts(parent.info.run_id, "results/runs.csv")
        rows = list(__import__("csv").DictReader(open(runs_csv)))
        assert all(float(row["peak_rss_mb"]) > 100 for row in rows)


def test_use_command_for_every_family(sweeps, mlflow_server):
    client = mlflow_server.client()
    for family, (folder, _) in sweeps.items():
        name = f"use-{family}"
        result = run_cli([name, "--tracking-uri", mlflow_server.uri, "--samples", "16"], cwd=folder, timeout=300,
                         module="orchestration.use")
        assert result.returncode == 0, result.stderr[-3000:]
        experiment, parent, children = parent_and_children(client, name)
        uses = client.search_runs([experiment.experiment_id], f"tags.`sweep.use.model_uri` = 'models:/{name}@best'")
        assert len(uses) == 1
        use = uses[0]
        assert use.data.tags["mlflow.parentRunId"] == parent.info.run_id and use.info.status == "FINISHED"
        artifacts = {a.path for a in client.list_artifacts(use.info.run_id)}
        best = client.get_run(parent.data.tags["sweep.best_run_id"])
        if family == "diffusion":
            assert (folder / "use-use-diffusion" / "samples.png").stat().st_size > 1000 and "samples.png" in artifacts
            assert use.data.metrics["samples"] == 16 and use.data.metrics["sample_pixel_std"] > 0.05
            samples = client.get_run(best.info.run_id).data.params["eval_samples"]
            assert "its sweep scored it eval/fid " in result.stdout and f"(eval_samples={samples})" in result.stdout
        elif family == "contrastive":
            assert "embedding_tsne.png" in artifacts
            # the loaded encoder scores exactly what the trial scored at its last evaluation
            assert use.data.metrics["eval/knn_acc"] == pytest.approx(best.data.metrics["eval/knn_acc"], abs=1e-9)
            assert use.data.metrics["eval/knn_acc_ci_low"] < use.data.metrics["eval/knn_acc"]
        else:
            assert (folder / "use-use-rl" / "episode.gif").stat().st_size > 1000 and "episode.gif" in artifacts
            # the trial's own evaluation seeds, episodes and epsilon: the same returns
            assert use.data.metrics["eval/episode_return_mean"] == best.data.metrics["eval/episode_return_mean"]
            assert "95% CI" in result.stdout
        assert len(children) == 2, "the use run is not a trial"


def test_resume_of_a_finished_sweep_says_so_and_registers_nothing(sweeps, mlflow_server):
    """Issue 33: `--resume` of a sweep whose ending ran exits 0 before Ray starts, with one line; it used to run
    the ending again and register another model version."""
    folder, _ = sweeps["contrastive"]
    client = mlflow_server.client()
    experiment = client.get_experiment_by_name("use-contrastive")
    runs_before = {r.info.run_id for r in client.search_runs([experiment.experiment_id])}
    result = run_cli(["use-contrastive", "--resume", "--smoke", "--num-cpus", "2", "--tracking-uri",
                      mlflow_server.uri], cwd=folder, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "already finished (parent run " in result.stdout and "nothing to resume" in result.stdout
    assert "Started a local Ray instance" not in result.stdout + result.stderr
    assert [v.version for v in client.search_model_versions("name='use-contrastive'")] == ["1"]
    assert {r.info.run_id for r in client.search_runs([experiment.experiment_id])} == runs_before


@pytest.mark.long
def test_a_later_sweep_adds_a_version_and_moves_the_alias_only_when_it_wins(sweeps, mlflow_server):
    folder, _ = sweeps["diffusion"]
    result = sweep(folder, mlflow_server, "diffusion", "--set", "seed=1")
    client = mlflow_server.client()
    versions = {v.version: v for v in client.search_model_versions("name='use-diffusion'")}
    assert set(versions) == {"1", "2"}
    scores = {v: float(versions[v].tags["sweep.score"]) for v in versions}
    winner = min(scores, key=scores.get)  # eval/fid: lower is better
    assert client.get_model_version_by_alias("use-diffusion", ALIAS).version == winner
    said = "moved from version 1" if winner == "2" else "stays on version 1"
    assert f"registered model 'use-diffusion' version 2; alias 'best' {said}" in result.stdout


def test_alias_rules_on_the_real_registry(sweeps, mlflow_server):
    """Smoke never displaces a full sweep; another metric cannot be compared; ties keep the alias."""
    client = mlflow_server.client()
    _, parent, children = parent_and_children(client, "use-diffusion")
    uri = children[0].data.tags["sweep.model_uri"]
    run_id = children[0].info.run_id

    def offer(score, metric="eval/fid", smoke=False, measured_with="eval_samples=500"):
        line = register(client, "rules", Candidate(uri, run_id, metric, "min", score, smoke, measured_with),
                        parent.info.run_id, "c")
        return line, client.get_model_version_by_alias("rules", ALIAS).version

    assert offer(10.0, smoke=True)[1] == "1"
    line, holder = offer(50.0)
    assert holder == "2" and "a full sweep's model replaces a --smoke one" in line
    assert offer(1.0, smoke=True)[1] == "2"
    assert offer(50.0)[1] == "2", "a tie keeps the alias"
    line, holder = offer(5.0, metric="eval/other")
    assert holder == "2" and "cannot be compared" in line
    line, holder = offer(5.0, measured_with="eval_samples=64")
    assert holder == "2" and "scored with eval_samples=500, this sweep with eval_samples=64" in line, line
    line, holder = offer(20.0)
    assert holder == "7" and "eval/fid 20 beats 50" in line
