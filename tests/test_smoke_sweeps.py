"""`--smoke` of every shipped search space finishes on this machine (2 CPUs in CI): a wiring check
that fits where the user is, one seed per configuration, each trial a complete run in MLflow (its
family's baselines and pictures, a checkpoint, a model), the parent run names the best, and
`orchestration.use` puts the registered best to use (Atari included)."""

import pytest

from conftest import REPO, run_cli
from orchestration.search_space import load_sweep

pytestmark = [pytest.mark.slow, pytest.mark.long]

SPACES = sorted(p.stem for p in (REPO / "search_spaces").glob("*.yaml"))


@pytest.mark.parametrize("name", SPACES)
def test_smoke_of_every_shipped_search_space_finishes(tmp_path, mlflow_server, name):
    result = run_cli([name, "--smoke", "--num-cpus", "2", "--tracking-uri", mlflow_server.uri,
                      "--experiment", f"smoke-{name}"], cwd=tmp_path, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]

    spec = load_sweep(name)
    client = mlflow_server.client()
    experiment = client.get_experiment_by_name(f"smoke-{name}")
    runs = [r for r in client.search_runs([experiment.experiment_id]) if "mlflow.parentRunId" in r.data.tags]
    assert len(runs) == len(spec.configurations()), "one seed per configuration"
    budget = spec.family.smoke[spec.family.budget_param]
    finals = {}
    for run in runs:
        assert run.info.status == "FINISHED"
        history = client.get_metric_history(run.info.run_id, spec.metric)
        assert history and max(m.step for m in history) == budget, (run.info.run_name, history)
        finals[run.info.run_id] = max(history, key=lambda m: m.step).value
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert "checkpoint" in artifacts and run.data.tags["sweep.model_uri"].startswith("models:/m-")
        if spec.family.name == "contrastive":
            metrics = run.data.metrics
            assert 0.9 < metrics["baseline/knn_acc_pixels"] <= 1.0
            first = min(history, key=lambda m: m.step)
            assert first.step == 0 and first.value == pytest.approx(metrics["baseline/knn_acc_random_encoder"])
            assert {"embedding_tsne.png", "augmentations.png", "accuracy_curve.png"} <= artifacts
    parent = next(r for r in client.search_runs([experiment.experiment_id]) if "mlflow.parentRunId" not in r.data.tags)
    best = (max if spec.mode == "max" else min)(finals.values())
    assert parent.data.metrics[f"best/{spec.metric}"] == pytest.approx(best)
    assert finals[parent.data.tags["sweep.best_run_id"]] == pytest.approx(best)

    options = ["--samples", "4", "--episodes", "2", "--tracking-uri", mlflow_server.uri]
    use = run_cli([f"smoke-{name}", *options], cwd=tmp_path, module="orchestration.use")
    assert use.returncode == 0, use.stderr[-3000:]
    used = client.search_runs([experiment.experiment_id], "tags.`sweep.use.model_uri` != ''")
    assert len(used) == 1 and used[0].data.tags["sweep.use.source_run_id"] == parent.data.tags["sweep.best_run_id"]
