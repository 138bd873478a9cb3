"""End to end: the CLI runs real Tune sweeps on a local Ray (2 CPUs) into a real MLflow server."""

import csv
import io
import json
import os
import subprocess
import sys
import textwrap

import pytest

from conftest import REPO, run_cli

pytestmark = pytest.mark.slow

TINY = """
  timesteps: {{value: 50}}
  iterations: {{value: {iterations}}}
  steps_per_iteration: {{value: 15}}
  batch_size: {{value: 32}}
  base_channels: {{value: 8}}
  eval_samples: {{value: 100}}
  sample_steps: {{value: 10}}
  cache_dir: {{value: "{cache}"}}
"""


def write_space(tmp_path, head: str, iterations: int) -> None:
    folder = tmp_path / "search_spaces"
    folder.mkdir(exist_ok=True)
    body = textwrap.dedent(head) + TINY.format(iterations=iterations, cache=tmp_path / "cache")
    (folder / "tiny.yaml").write_text(body)


def report_cli(sweep: str, mlflow_server, cwd, *args: str) -> str:
    """`python -m orchestration.report SWEEP ARGS` against the test server; its standard output."""
    report = subprocess.run([sys.executable, "-m", "orchestration.report", sweep, "--tracking-uri", mlflow_server.uri,
                             *args], capture_output=True, text=True, cwd=cwd, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert report.returncode == 0, report.stderr
    return report.stdout


def sweep_with_one_failure(tmp_path, space: str, failure: str, experiment: str, mlflow_server, *options: str):
    """Run search_spaces/SPACE.yaml with one injected crash ("<trial name part>@<iteration>") and one
    retry allowed (and `options`); returns the MLflow client and experiment."""
    env = {"SWEEP_INJECT_FAILURE": failure, "SWEEP_INJECT_FAILURE_DIR": str(tmp_path)}
    result = run_cli([space, "--num-cpus", "2", "--tracking-uri", mlflow_server.uri, "--experiment", experiment,
                      "--max-failures", "1", *options], cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    # the failure in one line with its traceback's path, not Tune's pages of traceback
    lines = [line for line in result.stderr.splitlines() if line.startswith("[sweep] trial ")]
    assert len(lines) == 1 and "failed (retrying from its last checkpoint): " in lines[0], result.stderr[-3000:]
    assert lines[0].endswith("error.txt)") and "Traceback" not in result.stderr, result.stderr[-3000:]
    client = mlflow_server.client()
    return client, client.get_experiment_by_name(experiment)


def interrupt_when(tmp_path, mlflow_server, args: list[str], experiment_name: str, runs_filter: str):
    """Start `python -m orchestration.sweep ARGS`, send it Ctrl-C once a run of the experiment matches
    `runs_filter`, and return (client, experiment, stderr) after checking it exited 130."""
    import signal
    import time

    # the sweep writes to files: a pipe nobody reads until the end fills up and blocks the driver mid-sweep
    out, err_path = tmp_path / "interrupted-stdout.txt", tmp_path / "interrupted-stderr.txt"
    with open(out, "w") as stdout, open(err_path, "w") as stderr:
        proc = subprocess.Popen([sys.executable, "-m", "orchestration.sweep", *args], cwd=tmp_path,
                                env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=stdout, stderr=stderr, text=True)
    client = mlflow_server.client()
    deadline = time.time() + 300
    while time.time() < deadline:
        experiment = client.get_experiment_by_name(experiment_name)
        if experiment and client.search_runs([experiment.experiment_id], runs_filter):
            break
        time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=300)
    err = err_path.read_text()
    assert proc.returncode == 130, err[-3000:]
    return client, experiment, err


def children(client, experiment_id, parent_id):
    return client.search_runs([experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{parent_id}'")


def parent_run(client, experiment_id):
    runs = [r for r in client.search_runs([experiment_id]) if "mlflow.parentRunId" not in r.data.tags]
    assert len(runs) == 1
    return runs[0]


def test_two_trial_sweep_lands_in_mlflow(tmp_path, mlflow_server):
    write_space(tmp_path, """
        family: diffusion
        metric: {name: eval/fid, goal: minimize}
        parameters:
          schedule: {values: [linear, cosine]}
    """, iterations=2)
    result = run_cli(["tiny", "--num-cpus", "2", "--tracking-uri", mlflow_server.uri, "--experiment", "two-trials"],
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "[sweep] best configuration: schedule=" in result.stdout
    assert "one seed per configuration: this ranking carries no uncertainty estimate" in result.stdout

    client = mlflow_server.client()
    experiment = client.get_experiment_by_name("two-trials")
    parent = parent_run(client, experiment.experiment_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.params["swept"] == "schedule"
    runs = children(client, experiment.experiment_id, parent.info.run_id)
    assert sorted(r.data.params["schedule"] for r in runs) == ["cosine", "linear"]

    finals = {}
    for run in runs:
        assert run.info.status == "FINISHED"
        assert run.data.params["timesteps"] == "50" and run.data.params["lr"] == "0.001"
        fid = client.get_metric_history(run.info.run_id, "eval/fid")
        assert [m.step for m in fid] == [0, 1, 2]  # untrained, then one point per iteration
        assert [m.step for m in client.get_metric_history(run.info.run_id, "train/loss")] == [1, 2]
        assert run.data.metrics["schedule/alpha_bar_T"] < 1e-3
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert {"samples.png", "forward_process.png", "loss_curve.png", "checkpoint"} <= artifacts
        finals[run.info.run_id] = fid[-1].value

    # where the time went (bench/sweep_overhead.py reads both): the driver's phases and each trial's clocks
    assert "[sweep] time outside Tune: " in result.stdout
    (timeline,) = (tmp_path / "ray_results").glob("*/sweep_timeline.json")
    phases = json.loads(timeline.read_text())
    assert list(phases) == ["checks", "ray", "mlflow", "tune", "results"] and min(phases.values()) >= 0
    trial_results = [json.loads(f.read_text().splitlines()[-1]) for f in timeline.parent.glob("*/result.json")]
    assert len(trial_results) == 2
    for last in trial_results:
        assert last["overhead/tracking_s"] > 0 and last["overhead/model_s"] > 0
        assert 0 < last["overhead/checkpoints_s"] < last["time_total_s"] < phases["tune"]

    best_id = min(finals, key=finals.get)
    assert parent.data.tags["sweep.best_run_id"] == best_id
    assert parent.data.metrics["best/eval/fid"] == pytest.approx(finals[best_id])
    table = client.download_artifacts(parent.info.run_id, "results/results.csv", str(tmp_path))
    configs = list(csv.DictReader(io.StringIO(open(table).read())))
    column = f"eval/fid (eval_samples={runs[0].data.params['eval_samples']}) mean"  # FID names its sample count
    assert [float(c[column]) for c in configs] == pytest.approx(sorted(finals.values()), rel=1e-3)
    assert all(c["seeds"] == "1" for c in configs) and configs[0]["tied with best"] == "best"

    parent_files = {a.path for a in client.list_artifacts(parent.info.run_id, "results")}
    assert {"results/results.csv", "results/results.md", "results/runs.csv", "results/curves.png",
            "results/by_schedule.png"} <= parent_files

    # the report, rebuilt from MLflow alone, carries the same numbers as the runs
    report = report_cli("two-trials", mlflow_server, tmp_path, "--runs")
    reported = {r["mlflow_run_id"]: r for r in csv.DictReader(io.StringIO(report))}
    assert set(reported) == set(finals)
    for run_id, final in finals.items():
        history = [m.value for m in client.get_metric_history(run_id, "eval/fid") if m.step > 0]
        fid = column.removesuffix(" mean")
        assert float(reported[run_id][f"{fid} (final)"]) == pytest.approx(final, rel=1e-3)
        assert float(reported[run_id][f"{fid} (best)"]) == pytest.approx(min(history), rel=1e-3)
        assert reported[run_id]["iterations"] == "2" and reported[run_id]["status"] == "finished"
    assert list(csv.DictReader(io.StringIO(report_cli("two-trials", mlflow_server, tmp_path, "--format", "csv")))) \
        == configs, "the same table as the sweep's own"

    relogged = subprocess.run([sys.executable, "-m", "orchestration.report", "two-trials", "--tracking-uri",
                               mlflow_server.uri, "--log"], capture_output=True, text=True, cwd=tmp_path,
                              env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)
    assert relogged.returncode == 0, relogged.stderr
    assert parent_files <= {a.path for a in client.list_artifacts(parent.info.run_id, "results")}


@pytest.mark.long  # the default run races the same four configurations end to end (tests/test_race.py)
def test_replicated_sweep_groups_seeds_and_finds_the_tied_best(tmp_path, mlflow_server):
    """2 learning rates x 2 values of a parameter without effect on digits (data_dir) x 2 seeds, scored
    by the training loss (30 steps are too few to move the FID): the
    grouped table matches the runs, configurations differing only in data_dir are tied with the best,
    and the one that cannot learn (lr 1e-7) is not."""
    write_space(tmp_path, f"""
        family: diffusion
        metric: {{name: train/loss, goal: minimize}}
        seeds: 2
        parameters:
          lr: {{values: [0.003, 1.0e-7]}}
          data_dir: {{values: ["{tmp_path / 'a'}", "{tmp_path / 'b'}"]}}
    """, iterations=2)
    result = run_cli(["tiny", "--num-cpus", "2", "--tracking-uri", mlflow_server.uri, "--experiment", "replicated"],
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]

    client = mlflow_server.client()
    experiment = client.get_experiment_by_name("replicated")
    parent = parent_run(client, experiment.experiment_id)
    runs = children(client, experiment.experiment_id, parent.info.run_id)
    assert len(runs) == 8 and sorted(r.data.params["seed"] for r in runs) == ["0"] * 4 + ["1"] * 4
    finals = {}
    for run in runs:
        key = (run.data.params["lr"], run.data.params["data_dir"])
        finals.setdefault(key, {})[run.data.params["seed"]] = client.get_metric_history(run.info.run_id,
                                                                                         "train/loss")[-1].value
        assert len({r.data.tags["sweep.config_id"] for r in runs if (r.data.params["lr"], r.data.params["data_dir"])
                    == key}) == 1, "the replicates of a configuration share its id"
    table = {(c["lr"], c["data_dir"]): c for c in csv.DictReader(io.StringIO(
        report_cli("replicated", mlflow_server, tmp_path, "--format", "csv")))}
    assert set(table) == set(finals)
    for key, by_seed in finals.items():
        assert table[key]["seeds"] == "2"
        assert float(table[key]["train/loss mean"]) == pytest.approx(sum(by_seed.values()) / 2, rel=1e-4)
    learning = [k for k in table if k[0] == "0.003"]
    assert {table[k]["tied with best"] for k in learning} == {"best", "yes"}, ("data_dir has no effect", table)
    assert {table[k]["tied with best"] for k in table if k[0] == "1e-07"} == {"no"}
    assert ("tied with it (not separated from the best by a one-sided t test at 5%, noise pooled over "
            "configurations and seeds): lr=0.003") in result.stdout
    assert parent.data.tags["sweep.best_config_id"] == table[next(k for k in learning if table[k]["tied with best"]
                                                                   == "best")]["config_id"]
    assert len(parent.data.tags["sweep.tied_config_ids"].split(",")) == 2


@pytest.mark.long
def test_trials_reuse_one_worker_and_leave_nothing_behind(tmp_path, mlflow_server):
    """`reuse_actors`: one after another, trials share a worker process, yet each run is complete
    and each trial ends exactly where it ends in a fresh process."""
    write_space(tmp_path, """
        family: diffusion
        parameters:
          schedule: {values: [linear, cosine, sigmoid]}
    """, iterations=2)
    common = ["--num-cpus", "2", "--tracking-uri", mlflow_server.uri]
    shared = run_cli(["tiny", *common, "--experiment", "reuse", "--max-concurrent", "1"], cwd=tmp_path)
    assert shared.returncode == 0, shared.stderr[-3000:]
    alone = run_cli(["tiny", *common, "--experiment", "alone", "--set", "schedule=sigmoid"], cwd=tmp_path)
    assert alone.returncode == 0, alone.stderr[-3000:]

    client = mlflow_server.client()
    experiment = client.get_experiment_by_name("reuse")
    runs = children(client, experiment.experiment_id, parent_run(client, experiment.experiment_id).info.run_id)
    assert len(runs) == 3 and len({r.data.tags["pid"] for r in runs}) == 1, "trials did not share a worker"
    for run in runs:
        assert run.info.status == "FINISHED" and "sweep.retries" not in run.data.tags
        assert [m.step for m in client.get_metric_history(run.info.run_id, "eval/fid")] == [0, 1, 2]
        assert {"samples.png", "forward_process.png", "checkpoint"} <= {
            a.path for a in client.list_artifacts(run.info.run_id)}
    reused = next(r for r in runs if r.data.params["schedule"] == "sigmoid")  # the third in the same process
    lone = client.search_runs([client.get_experiment_by_name("alone").experiment_id],
                              "tags.`mlflow.parentRunId` != ''")
    assert len(lone) == 1
    assert reused.data.metrics["eval/fid"] == pytest.approx(lone[0].data.metrics["eval/fid"], rel=1e-6)
    assert reused.data.metrics["train/loss"] == pytest.approx(lone[0].data.metrics["train/loss"], rel=1e-6)


@pytest.mark.long
def test_rl_trials_with_env_runners_reuse_one_worker(tmp_path, mlflow_server):
    """RL trials hold a placement group (the trial's bundle plus one per EnvRunner); a reused worker
    must stop the last trial's EnvRunners and start the next trial's in the same group."""
    (tmp_path / "search_spaces").mkdir()
    (tmp_path / "search_spaces" / "cartpole.yaml").write_text(textwrap.dedent("""
        family: rl
        metric: {name: eval/episode_return_mean, goal: maximize}
        parameters:
          algorithm: {values: [dqn, a2c]}
          evaluation_episodes: {value: 5}
          num_env_runners: {value: 1}
          num_envs_per_env_runner: {value: 2}
          iterations: {value: 2}
          env_steps_per_iteration: {value: 300}
          learning_starts: {value: 100}
    """))
    result = run_cli(["cartpole", "--num-cpus", "2", "--tracking-uri", mlflow_server.uri, "--experiment", "rl-reuse",
                      "--max-concurrent", "1"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]

    client = mlflow_server.client()
    experiment = client.get_experiment_by_name("rl-reuse")
    runs = children(client, experiment.experiment_id, parent_run(client, experiment.experiment_id).info.run_id)
    assert sorted(r.data.params["algorithm"] for r in runs) == ["a2c", "dqn"]
    assert len({r.data.tags["pid"] for r in runs}) == 1, "the trials did not share a worker"
    for run in runs:
        assert run.info.status == "FINISHED"
        steps = client.get_metric_history(run.info.run_id, "env_steps")
        assert [m.step for m in steps] == [1, 2] and steps[-1].value >= 600
        evaluations = client.get_metric_history(run.info.run_id, "eval/episode_return_mean")
        assert [m.step for m in evaluations] == [1, 2] and all(m.value >= 8 for m in evaluations)
        assert "checkpoint" in {a.path for a in client.list_artifacts(run.info.run_id)}


@pytest.mark.long  # a failure mode (32 s): moved out of the default run to keep it under 15 minutes
def test_a_retried_dqn_trial_continues_its_replay_buffer_and_curves(tmp_path, mlflow_server):
    """A DQN trial that crashes at iteration 3 resumes from its iteration-2 checkpoint (replay buffer,
    counters, episode window and history: see test_rl_algorithms): every step reaches MLflow once and
    the env-step count continues."""
    (tmp_path / "search_spaces").mkdir()
    (tmp_path / "search_spaces" / "dqn.yaml").write_text(textwrap.dedent("""
        family: rl
        parameters:
          algorithm: {values: [dqn]}  # swept, so the trial is named algorithm=dqn
          evaluation_episodes: {value: 5}
          iterations: {value: 4}
          env_steps_per_iteration: {value: 600}
          learning_starts: {value: 500}
    """))
    client, experiment = sweep_with_one_failure(tmp_path, "dqn", "algorithm=dqn@3", "rl-retry", mlflow_server)
    [run] = children(client, experiment.experiment_id, parent_run(client, experiment.experiment_id).info.run_id)
    assert run.info.status == "FINISHED" and run.data.tags["sweep.retries"] == "1"
    for metric in ("env_steps", "episode_return_mean", "eval/episode_return_mean", "train/td_loss"):
        history = client.get_metric_history(run.info.run_id, metric)
        assert sorted(m.step for m in history) == [1, 2, 3, 4], metric
    steps = [m.value for m in sorted(client.get_metric_history(run.info.run_id, "env_steps"), key=lambda m: m.step)]
    assert steps == sorted(steps) and steps[-1] >= 2400, "the env-step count continues after the retry"


@pytest.mark.long  # the default run took 1,023 s on 2026-12-06: ASHA with seeds stays in it
def test_asha_stops_bad_trials_early(tmp_path, mlflow_server):
    write_space(tmp_path, """
        family: diffusion
        metric: {name: train/loss, goal: minimize}
        scheduler: {type: asha, grace_period: 1, reduction_factor: 2}
        parameters:
          lr: {values: [0.003, 1.0e-7, 1.1e-7, 1.2e-7]}
    """, iterations=4)
    result = run_cli(["tiny", "--num-cpus", "2", "--tracking-uri", mlflow_server.uri, "--experiment", "asha"],
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]

    client = mlflow_server.client()
    experiment = client.get_experiment_by_name("asha")
    parent = parent_run(client, experiment.experiment_id)
    runs = children(client, experiment.experiment_id, parent.info.run_id)
    assert len(runs) == 4 and all(r.info.status == "FINISHED" for r in runs)
    steps = {r.data.params["lr"]: len(client.get_metric_history(r.info.run_id, "train/loss")) for r in runs}
    stopped = [r for r in runs if r.data.tags.get("sweep.stopped_early") == "true"]
    assert stopped, f"ASHA stopped nothing: iterations per lr {steps}"
    assert all(steps[r.data.params["lr"]] < 4 for r in stopped)
    for run in runs:  # a stopped trial's worker may be reused for the next trial: its artifacts come first
        assert {"samples.png", "checkpoint"} <= {a.path for a in client.list_artifacts(run.info.run_id)}
    assert steps["0.003"] == 4, "the only learning trial must run to max_t"
    best = client.get_run(parent.data.tags["sweep.best_run_id"])
    assert best.data.params["lr"] == "0.003"


def test_asha_with_seeds_compares_configurations_on_finished_seeds(tmp_path, mlflow_server):
    """Under ASHA each (configuration, seed) trial is halved on its own result. One trial at a time: the
    configuration that cannot learn (lr 1e-7) loses at least one seed at the first rung; its row says
    how many of its seeds finished, its mean covers only those, and it is not judged against the best
    on seeds it did not finish."""
    write_space(tmp_path, """
        family: diffusion
        metric: {name: train/loss, goal: minimize}
        seeds: 2
        scheduler: {type: asha, grace_period: 1, reduction_factor: 2}
        parameters:
          lr: {values: [0.003, 1.0e-7]}
    """, iterations=4)
    result = run_cli(["tiny", "--num-cpus", "2", "--tracking-uri", mlflow_server.uri, "--experiment", "asha-seeds",
                      "--max-concurrent", "1"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]

    client = mlflow_server.client()
    experiment = client.get_experiment_by_name("asha-seeds")
    runs = children(client, experiment.experiment_id, parent_run(client, experiment.experiment_id).info.run_id)
    finals = {}
    for run in runs:
        history = client.get_metric_history(run.info.run_id, "train/loss")
        finals.setdefault(run.data.params["lr"], {})[run.data.params["seed"]] = (len(history), history[-1].value)
    assert {lr: len(by_seed) for lr, by_seed in finals.items()} == {"0.003": 2, "1e-07": 2}
    assert len({run.data.tags["pid"] for run in runs}) == 1, "--max-concurrent 1: one trial at a time, one worker"
    assert all(n == 4 for n, _ in finals["0.003"].values())
    finished_bad = [final for n, final in finals["1e-07"].values() if n == 4]
    assert len(finished_bad) < 2, f"ASHA stopped no seed of lr 1e-7: {finals}"

    table = {row["lr"]: row for row in csv.DictReader(io.StringIO(
        report_cli("asha-seeds", mlflow_server, tmp_path, "--format", "csv")))}
    assert table["0.003"]["tied with best"] == "best" and table["0.003"]["finished"] == "2/2"
    bad = table["1e-07"]
    assert bad["finished"] == f"{len(finished_bad)}/2" and bad["seeds"] == str(len(finished_bad))
    if finished_bad:
        assert float(bad["train/loss mean"]) == pytest.approx(finished_bad[0], rel=1e-4)
        assert bad["tied with best"] == "?"
        assert "not judged (fewer than 2 seeds in common with the best): lr=1e-07" in result.stdout
    else:
        assert bad["train/loss mean"] == "-" and bad["tied with best"] == "-"
    assert "best configuration: lr=0.003" in result.stdout


@pytest.mark.long
def test_interrupted_sweep_resumes_into_the_same_runs(tmp_path, mlflow_server):
    write_space(tmp_path, """
        family: diffusion
        parameters:
          schedule: {values: [linear, cosine, sigmoid]}
    """, iterations=3)
    args = ["tiny", "--num-cpus", "2", "--tracking-uri", mlflow_server.uri, "--experiment", "resume",
            "--name", "resume-me"]
    # interrupt once the first trial has logged a training step
    client, experiment, err = interrupt_when(tmp_path, mlflow_server, args, "resume", "metrics.`train/loss` > 0")
    assert "--name resume-me --resume" in err

    parent = parent_run(client, experiment.experiment_id)
    assert parent.info.status == "KILLED"
    before = children(client, experiment.experiment_id, parent.info.run_id)
    assert any(r.info.status == "KILLED" for r in before)

    result = run_cli([*args, "--resume"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert parent_run(client, experiment.experiment_id).info.status == "FINISHED"
    runs = children(client, experiment.experiment_id, parent.info.run_id)
    assert sorted(r.data.params["schedule"] for r in runs) == ["cosine", "linear", "sigmoid"]
    for run in runs:
        assert run.info.status == "FINISHED"
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "train/loss")]
        assert sorted(set(steps)) == [1, 2, 3], steps


@pytest.mark.long
def test_a_failed_checkpoint_write_is_retried_and_every_step_is_logged_once(tmp_path, mlflow_server):
    """The write of checkpoint 2 fails (an I/O error; a full disk stops the sweep instead, test_disk_full.py),
    after step 2 reached MLflow. Tune retries the trial from checkpoint 1, so step 2 runs again: it must not
    be logged again."""
    write_space(tmp_path, """
        family: diffusion
        parameters:
          schedule: {values: [cosine]}
    """, iterations=3)
    client, experiment = sweep_with_one_failure(tmp_path, "tiny", "schedule=cosine@checkpoint:2", "checkpoint-write",
                                                mlflow_server)
    run = children(client, experiment.experiment_id, parent_run(client, experiment.experiment_id).info.run_id)[0]
    assert run.info.status == "FINISHED" and run.data.tags["sweep.retries"] == "1"
    for metric, steps in (("train/loss", [1, 2, 3]), ("eval/fid", [0, 1, 2, 3])):
        assert sorted(m.step for m in client.get_metric_history(run.info.run_id, metric)) == steps, metric


@pytest.mark.long
def test_with_a_checkpoint_every_two_iterations_a_retry_repeats_the_steps_since_and_logs_each_once(
        tmp_path, mlflow_server):
    """`--checkpoint-every 2`: Tune checkpoints at iterations 2 and 4 (the end) only. A crash at iteration 4
    goes back to iteration 2, so step 3 runs twice; MLflow holds it once, as every other step."""
    write_space(tmp_path, """
        family: diffusion
        parameters:
          schedule: {values: [cosine]}
    """, iterations=4)
    client, experiment = sweep_with_one_failure(tmp_path, "tiny", "schedule=cosine@4", "checkpoint-every",
                                                mlflow_server, "--checkpoint-every", "2")
    parent = parent_run(client, experiment.experiment_id)
    assert parent.data.params["checkpoint_every"] == "2"
    run = children(client, experiment.experiment_id, parent.info.run_id)[0]
    assert run.info.status == "FINISHED" and run.data.tags["sweep.retries"] == "1"
    for metric, steps in (("train/loss", [1, 2, 3, 4]), ("eval/fid", [0, 1, 2, 3, 4])):
        assert sorted(m.step for m in client.get_metric_history(run.info.run_id, metric)) == steps, metric
    checkpoints = sorted(json.loads(origin.read_text())["iteration"]
                         for origin in (tmp_path / "ray_results").rglob("origin.json"))
    assert checkpoints == [2, 4], checkpoints


@pytest.mark.long
def test_a_failing_trial_is_retried_from_its_checkpoint_and_the_failure_stays_visible(tmp_path, mlflow_server):
    write_space(tmp_path, """
        family: diffusion
        parameters:
          schedule: {values: [linear, cosine]}
    """, iterations=3)
    client, experiment = sweep_with_one_failure(tmp_path, "tiny", "schedule=linear@2", "retry", mlflow_server)
    parent = parent_run(client, experiment.experiment_id)
    runs = {r.data.params["schedule"]: r for r in children(client, experiment.experiment_id, parent.info.run_id)}
    assert set(runs) == {"linear", "cosine"} and all(r.info.status == "FINISHED" for r in runs.values())
    failed = runs["linear"]
    assert failed.data.tags["error"] == "RuntimeError: injected failure in schedule=linear at iteration 2"
    assert failed.data.tags["sweep.retries"] == "1"
    assert "error.txt" in {a.path for a in client.list_artifacts(failed.info.run_id)}
    steps = [m.step for m in client.get_metric_history(failed.info.run_id, "train/loss")]
    assert sorted(steps) == [1, 2, 3], "resumed from the iteration-1 checkpoint: nothing lost, nothing doubled"
    assert "error" not in runs["cosine"].data.tags


@pytest.mark.long
def test_two_sweeps_started_together_share_a_new_sqlite_store(tmp_path):
    """Two real sweeps start at the same moment in a folder without mlflow.db (the embedded default):
    both finish, and both are in the one store."""
    write_space(tmp_path, """
        family: diffusion
        parameters:
          schedule: {values: [linear]}
    """, iterations=1)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("MLFLOW_TRACKING_URI", None)
    procs = [subprocess.Popen([sys.executable, "-m", "orchestration.sweep", "tiny", "--num-cpus", "1", "--name", name],
                              cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for name in ("first", "second")]
    outputs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-2000:] for _, err in outputs]
    assert not any("duplicate column" in err for _, err in outputs)
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("tiny")
    parents = {r.info.run_name for r in client.search_runs([experiment.experiment_id])
               if "mlflow.parentRunId" not in r.data.tags}
    assert parents == {"first", "second"}
    assert len(client.search_model_versions("name='tiny'")) == 2


@pytest.mark.long  # a resume after an interruption (57 s): moved out of the default run to keep it under 15 minutes
def test_bayes_sweep_with_asha_resumes_the_same_study(tmp_path, mlflow_server):
    """method: bayes (Optuna TPE) under ASHA, interrupted after its first trial and resumed: suggestions
    lie inside the declared bounds, every trial has one run, and the study Tune saved holds every trial
    with the values its run logged (none suggested twice, none lost)."""

    write_space(tmp_path, """
        family: diffusion
        method: bayes
        num_samples: 4
        scheduler: {type: asha, max_t: 2, grace_period: 1}
        parameters:
          lr: {distribution: log_uniform, min: 1.0e-4, max: 1.0e-2}
          schedule: {values: [linear, cosine]}
    """, iterations=2)
    args = ["tiny", "--num-cpus", "2", "--tracking-uri", mlflow_server.uri, "--experiment", "bayes",
            "--name", "bayes-run", "--max-concurrent", "1"]
    # interrupt once the first trial has finished
    client, experiment, _ = interrupt_when(tmp_path, mlflow_server, args, "bayes", "attributes.status = 'FINISHED'")
    assert not client.search_model_versions("name='bayes'"), "an unfinished sweep registers nothing"

    result = run_cli([*args, "--resume"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(client.search_model_versions("name='bayes'")) == 1, "the resumed sweep registers its best"
    parent = parent_run(client, experiment.experiment_id)
    runs = children(client, experiment.experiment_id, parent.info.run_id)
    assert len(runs) == 4 and len({r.data.tags["ray.trial_id"] for r in runs}) == 4
    logged = sorted((float(r.data.params["lr"]), r.data.params["schedule"]) for r in runs)
    assert all(1e-4 <= lr <= 1e-2 for lr, _ in logged) and len({lr for lr, _ in logged}) == 4

    from ray.tune.search.optuna import OptunaSearch

    searcher = OptunaSearch()
    searcher.restore_from_dir(str(tmp_path / "ray_results" / "bayes-run"))
    studied = sorted((t.params["lr"], t.params["schedule"]) for t in searcher._ot_study.trials)
    assert studied == [(pytest.approx(lr), schedule) for lr, schedule in logged]
    assert all(t.state.name == "COMPLETE" for t in searcher._ot_study.trials)


@pytest.mark.long  # the default run took 1,023 s on 2026-12-06
def test_pbt_exploits_load_checkpoints_and_mutated_values_take_effect(tmp_path, mlflow_server):
    """Four SimCLR trials under synchronous PBT, perturbed every iteration: at least one trial is
    restored from another's checkpoint; its run records from which trial, at which iteration, the old and
    new values; the optimiser's lr and the loss temperature (hp/<name>, read from the live experiment)
    take the new values; hp/<name> has one point per iteration; every trial keeps one run."""
    import json

    (tmp_path / "search_spaces").mkdir()
    (tmp_path / "search_spaces" / "pbt.yaml").write_text(textwrap.dedent("""
        family: contrastive
        method: random
        num_samples: 4
        scheduler: {type: pbt, perturbation_interval: 1, quantile_fraction: 0.25, resample_probability: 0.5,
                    mutations: [temperature, lr]}
        parameters:
          temperature: {distribution: log_uniform, min: 0.05, max: 1.0}
          lr: {values: [0.0005, 0.001, 0.002, 0.004]}
          iterations: {value: 3}
          steps_per_iteration: {value: 3}
          batch_size: {value: 32}
    """))
    result = run_cli(["pbt", "--num-cpus", "2", "--tracking-uri", mlflow_server.uri, "--experiment", "pbt"],
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    client = mlflow_server.client()
    experiment = client.get_experiment_by_name("pbt")
    parent = parent_run(client, experiment.experiment_id)
    runs = children(client, experiment.experiment_id, parent.info.run_id)
    assert len(runs) == 4 and len({r.data.tags["ray.trial_id"] for r in runs}) == 4
    by_trial = {r.data.tags["ray.trial_id"]: r for r in runs}
    hp = {}
    for run in runs:
        assert run.info.status == "FINISHED" and "sweep.retries" not in run.data.tags, "a pause is not a retry"
        hp[run.info.run_id] = {key: {m.step: m.value for m in client.get_metric_history(run.info.run_id, f"hp/{key}")}
                               for key in ("temperature", "lr")}
        assert all(sorted(values) == [1, 2, 3] for values in hp[run.info.run_id].values()), (
            hp[run.info.run_id], {k: v for k, v in run.data.tags.items() if k.startswith("pbt.")})
    exploits = []
    for run in runs:
        for tag, text in run.data.tags.items():
            if not tag.startswith("pbt.exploit."):
                continue
            record = json.loads(text)
            exploits.append(record)
            source, at = by_trial[record["from_trial"]], record["iteration"]
            assert record["from_run"] == source.info.run_id != run.info.run_id
            # the old values are what the source trained with when it wrote the checkpoint this trial loaded
            for key in ("temperature", "lr"):
                assert record["old"][key] == pytest.approx(hp[source.info.run_id][key][at])
                assert hp[run.info.run_id][key][at + 1] == pytest.approx(record["new"][key]), "took effect"
            assert 0.05 <= record["new"]["temperature"] <= 1.0
    assert exploits, "with 4 trials and a perturbation every iteration, some trial exploits another"
    # the answer names a trial and where its schedule ended, not an initial configuration
    answer = [line for line in result.stdout.splitlines() if line.startswith("[sweep] best trial: ")]
    assert len(answer) == 1 and "best configuration" not in result.stdout, result.stdout[-2000:]
    best = next(r for r in runs if r.info.run_id in answer[0])
    ended = result.stdout.split(" and ended at ")[1].split(";")[0]
    assert ended == ", ".join(f"{k}={hp[best.info.run_id][k][3]:.4g}" for k in ("lr", "temperature"))
    # the parent run's lineage: one row per exploit and parameter, as the report CLI rebuilds it from MLflow
    def lineage():
        path = client.download_artifacts(parent.info.run_id, "results/pbt_lineage.csv", str(tmp_path))
        return list(csv.DictReader(open(path)))

    rows = lineage()
    assert len(rows) == 2 * len(exploits)
    assert {(int(r["iteration"]), r["from_run_id"], r["parameter"]) for r in rows} == {
        (e["iteration"], e["from_run"], key) for e in exploits for key in ("temperature", "lr")}
    assert "pbt_schedules.png" in {a.path.split("/")[-1] for a in client.list_artifacts(parent.info.run_id, "results")}
    report_cli("pbt", mlflow_server, tmp_path, "--log")
    assert lineage() == rows
