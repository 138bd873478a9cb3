"""End to end: a real race on a local Ray (2 CPUs) into the real MLflow server.

Four configurations of the tiny diffusion space, scored by the training loss: two identical learners
(lr 0.003; data_dir has no effect on the bundled digits) and two that cannot learn (lr 1e-7). The pooled t
test can separate a configuration at the first look, after 2 seeds ((k-1)(n-1) = 3 degrees of freedom);
a rank test could not: with 4 configurations, Friedman's smallest p-value after 2 seeds is 0.13 (and a
sign test between two needs 5 seeds for p < 0.05).
"""

import csv
from collections import Counter

import pytest

from conftest import run_cli
from test_sweep_integration import children, interrupt_when, parent_run, write_space

pytestmark = pytest.mark.slow

RACE_SPACE = """
    family: diffusion
    metric: {{name: train/loss, goal: minimize}}
    race: {{first_seeds: 2, max_seeds: {max_seeds}}}
    parameters:
      lr: {{values: [0.003, 1.0e-7]}}
      data_dir: {{values: ["{a}", "{b}"]}}
"""


def race_csv(client, parent_id: str) -> list[dict]:
    path = client.download_artifacts(parent_id, "results/race.csv")
    with open(path) as f:
        return list(csv.DictReader(f))


def check_runs_match_race(client, experiment, parent, max_seeds: int) -> dict:
    """One finished run per (configuration, seed), each with every step logged once; race.csv agrees with them.
    Returns {lr: seeds} of the runs."""
    runs = children(client, experiment.experiment_id, parent.info.run_id)
    pairs = Counter((r.data.params["lr"], r.data.params["data_dir"], r.data.params["seed"]) for r in runs)
    assert set(pairs.values()) == {1}, pairs
    seeds: dict[str, set] = {}
    for run in runs:
        assert run.info.status == "FINISHED"
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "train/loss")]
        assert sorted(steps) == [1, 2], steps
        seeds.setdefault(run.data.params["lr"], set()).add(int(run.data.params["seed"]))
        index = int(run.data.params["seed"])
        assert run.data.tags["race.round"] == str(max(1, index)), "seeds 0 and 1 are round 1, seed s round s"
    rows = race_csv(client, parent.info.run_id)
    by_config = {}
    for run in runs:
        by_config.setdefault(run.data.tags["sweep.config_id"], {})[int(run.data.params["seed"])] = \
            client.get_metric_history(run.info.run_id, "train/loss")[-1].value
    for row in rows:
        recorded = by_config[row["config_id"]]
        seeds_so_far = int(row["seeds so far"])
        assert float(row["mean"]) == pytest.approx(sum(recorded[s] for s in range(seeds_so_far)) / seeds_so_far)
    assert max(int(r["seeds so far"]) for r in rows) == max_seeds
    return seeds


def test_a_race_drops_the_configurations_that_cannot_learn_at_the_first_look(tmp_path, mlflow_server):
    write_space(tmp_path, RACE_SPACE.format(max_seeds=4, a=tmp_path / "a", b=tmp_path / "b"), iterations=2)
    result = run_cli(["tiny", "--num-cpus", "2", "--tracking-uri", mlflow_server.uri, "--experiment", "race"],
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "[race] " in result.stdout and " round 1: 2 of 4 left (lr=1e-07" in result.stdout, result.stdout[-3000:]

    client = mlflow_server.client()
    experiment = client.get_experiment_by_name("race")
    parent = parent_run(client, experiment.experiment_id)
    seeds = check_runs_match_race(client, experiment, parent, max_seeds=4)
    assert seeds["0.003"] == {0, 1, 2, 3}, "the identical learners race to max_seeds"
    # the learners are out after 2 seeds; a third seed may have started speculatively while round 1 was open
    assert {0, 1} <= seeds["1e-07"] <= {0, 1, 2}
    rows = race_csv(client, parent.info.run_id)
    out = {r["configuration"]: (r["eliminated at"], r["reason"]) for r in rows if r["eliminated at"]}
    assert set(out.values()) == {("1", "behind the best")} and all("lr=1e-07" in c for c in out) and len(out) == 2
    tied = parent.data.tags["sweep.tied_config_ids"].split(",")
    survivors = {r["config_id"] for r in rows if r["round"] == "3"}
    assert set(tied) == survivors and len(survivors) == 2, "the race's survivors are the table's tied set"
    assert "raced: 2 of 4 configurations left with 4 seeds each (max 4)" in result.stdout
    assert "workers busy" in result.stdout


@pytest.mark.long
def test_a_race_interrupted_mid_way_resumes_without_running_a_seed_twice(tmp_path, mlflow_server):
    write_space(tmp_path, RACE_SPACE.format(max_seeds=4, a=tmp_path / "a", b=tmp_path / "b"), iterations=2)
    args = ["tiny", "--num-cpus", "2", "--tracking-uri", mlflow_server.uri, "--experiment", "race-resume",
            "--name", "race-me", "--max-concurrent", "1"]
    client, experiment, err = interrupt_when(tmp_path, mlflow_server, args, "race-resume",
                                             "tags.`race.round` = '2' and metrics.`train/loss` > 0")
    assert "--name race-me --resume" in err
    result = run_cli([*args, "--resume"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "on 1 trial slot: workers busy" in result.stdout, "--max-concurrent 1 is the race's one slot"
    parent = parent_run(client, experiment.experiment_id)
    assert parent.info.status == "FINISHED"
    seeds = check_runs_match_race(client, experiment, parent, max_seeds=4)
    assert seeds["0.003"] == {0, 1, 2, 3}
    assert {0, 1} <= seeds["1e-07"] <= {0, 1, 2}
