"""Bad input exits non-zero with one line on stderr, before Ray starts or anything is logged."""

import textwrap

import pytest

from conftest import free_port, run_cli

SPACE_OK = """
family: diffusion
parameters:
  schedule: {values: [linear, cosine]}
"""


@pytest.fixture
def workdir(tmp_path):
    (tmp_path / "search_spaces").mkdir()
    (tmp_path / "search_spaces" / "tiny.yaml").write_text(textwrap.dedent(SPACE_OK))
    return tmp_path


def bad_space(text):
    return "family: diffusion\nparameters:\n" + text


CASES = {
    "unknown sweep": ([], None, "unknown sweep 'nonexistent'"),
    "malformed YAML": (["--space", "bad.yaml"], "family: diffusion\nparameters: [\n", "malformed YAML"),
    "unknown parameter": (["--space", "bad.yaml"], bad_space("  widht: {value: 3}\n"), "unknown parameter"),
    "T < 1": (["--space", "bad.yaml"], bad_space("  timesteps: {value: 0}\n"), "must be >= 1, got 0"),
    "negative lr": (["--space", "bad.yaml"], bad_space("  lr: {values: [0.001, -1]}\n"), "must be > 0"),
    "unknown schedule": (["--space", "bad.yaml"], bad_space("  schedule: {value: warp}\n"), "got 'warp'"),
    "bad --set": (["tiny", "--set", "timesteps=-5"], None, "override timesteps: must be >= 1"),
    "bad --max-concurrent": (["tiny", "--max-concurrent", "0"], None, "--max-concurrent must be >= 1"),
    "bad --checkpoint-every": (["tiny", "--checkpoint-every", "0"], None, "--checkpoint-every must be >= 1, got 0"),
    "PBT mutates a fixed parameter": (
        ["--space", "bad.yaml"],
        "family: rl\nscheduler: {type: pbt, mutations: [hidden]}\nparameters:\n  hidden: {values: [[32], [64]]}\n",
        "scheduler.mutations: hidden cannot change during training"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_fails_fast_in_one_line(workdir, case):
    args, space, expected = CASES[case]
    if space is not None:
        (workdir / "bad.yaml").write_text(space)
        args = ["bad", *args]
    elif not args:
        args = ["nonexistent"]
    result = run_cli([*args, "--tracking-uri", f"sqlite:///{workdir / 'mlflow.db'}"], cwd=workdir, timeout=120)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and expected in lines[0]
    assert not (workdir / "ray_results").exists(), "Tune must not have started"
    assert not (workdir / "mlflow.db").exists(), "nothing may be logged for bad input"


def test_unreachable_mlflow_uri(workdir):
    port = free_port()  # nothing listens here
    result = run_cli(["tiny", "--tracking-uri", f"http://127.0.0.1:{port}"], cwd=workdir, timeout=120)
    assert result.returncode == 2
    uri = f"http://127.0.0.1:{port}"
    assert result.stderr.strip() == f"error: MLflow tracking URI {uri} is unreachable: ConnectionError"
    assert not (workdir / "ray_results").exists()


def test_unreachable_ray_address(workdir):
    port = free_port()
    result = run_cli(["tiny", "--address", f"127.0.0.1:{port}",
                      "--tracking-uri", f"sqlite:///{workdir / 'mlflow.db'}"], cwd=workdir, timeout=120)
    assert result.returncode == 2
    where = f"127.0.0.1:{port}"
    assert result.stderr.strip() == f"error: Ray address {where} is unreachable (no answer on {where})"
    assert not (workdir / "mlflow.db").exists()


def test_missing_sqlite_folder(workdir):
    result = run_cli(["tiny", "--tracking-uri", "sqlite:////no/such/dir/mlflow.db"], cwd=workdir, timeout=120)
    assert result.returncode == 2
    assert "folder /no/such/dir does not exist" in result.stderr


def test_resume_with_nothing_to_resume(workdir):
    result = run_cli(["tiny", "--resume", "--tracking-uri", f"sqlite:///{workdir / 'mlflow.db'}"], cwd=workdir,
                     timeout=120)
    assert result.returncode == 2
    assert "nothing to resume for sweep 'tiny'" in result.stderr


@pytest.mark.parametrize("args,expected", [
    (["tiny", "--cpus-per-trial", "64"], "no node can hold 64 CPU + 0 GPU (the largest has 2 CPU + 0 GPU)"),
    (["tiny", "--gpus-per-trial", "1"], "no node can hold 1 CPU + 1 GPU"),
    (["rl", "--set", "num_env_runners=4"], "it asks for 5 CPU + 0 GPU in all, the cluster has 2 CPU + 0 GPU"),
])
def test_a_trial_no_node_can_hold_is_refused_before_anything_runs(workdir, args, expected):
    """Tune would keep such trials PENDING forever; the sweep says what to change instead."""
    result = run_cli([*args, "--num-cpus", "2", "--tracking-uri", f"sqlite:///{workdir / 'mlflow.db'}"], cwd=workdir,
                     timeout=120)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "can never start" in errors[0] and expected in errors[0], result.stderr
    assert not (workdir / "mlflow.db").exists(), "no MLflow run may exist"
    assert not (workdir / "ray_results").exists(), "Tune must not have started"


USE_CASES = {
    "no store": (["x"], "no MLflow store at sqlite:///"),
    "nothing registered": (["nothing"], "no model registered as 'nothing' with alias 'best'"),
    "unknown model URI": (["x", "--model", "models:/m-0123456789abcdef"], "no model at models:/m-0123456789abcdef"),
    "not a model URI": (["x", "--model", "runs:/abc/model"], "expected models:/<name>@<alias>"),
    "episodes < 1": (["x", "--episodes", "0"], "--episodes must be >= 1, got 0"),
    "epsilon > 1": (["x", "--epsilon", "2"], "--epsilon must be in [0, 1], got 2.0"),
}


@pytest.mark.parametrize("case", sorted(USE_CASES))
def test_use_command_refuses_in_one_line(tmp_path, case):
    args, expected = USE_CASES[case]
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    if case != "no store":
        from orchestration.tracking import _client

        _client(uri)
    result = run_cli([*args, "--tracking-uri", uri], cwd=tmp_path, timeout=120, module="orchestration.use")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], result.stderr
