"""Checkpoints and experiment state in an object store (`--storage-path s3://...`), against a real S3 server
(moto's, see object_store.py): a bad bucket, key or endpoint is refused before Ray starts; a sweep keeps its
state in the bucket, resumes from the bucket alone in a fresh folder, and its MLflow artifacts go to the same
store through the tracking server, so `report` and `use` need nothing from the local disk."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import REPO, MlflowServer, free_port, run_cli
from object_store import S3Server
from test_sweep_integration import interrupt_when, write_space


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    server = S3Server(tmp_path_factory.mktemp("s3"))
    yield server
    server.stop()


def refusal(tmp_path, storage: str, env: dict) -> str:
    result = run_cli(["diffusion", "--storage-path", storage, "--tracking-uri", f"sqlite:///{tmp_path / 'm.db'}"],
                     cwd=tmp_path, env=env, timeout=120)
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "[sweep]" not in result.stdout  # refused before Ray or MLflow were touched
    return lines[0]


def test_a_bucket_that_does_not_exist_wrong_credentials_and_an_unreachable_endpoint_are_refused(tmp_path, s3,
                                                                                                monkeypatch):
    from orchestration.errors import SweepError
    from orchestration.storage import Storage

    s3.create_bucket("present")
    # the whole path once: one line on stderr, exit 2, before Ray or MLflow
    assert "bucket 'absent' does not exist" in refusal(tmp_path, "s3://absent/ray_results", s3.env)

    def refused(uri: str, **env: str) -> str:  # the same check in this process, for the other cases
        for key, value in {**s3.env, **env}.items():
            monkeypatch.setenv(key, value)
        with pytest.raises(SweepError) as error:
            Storage.parse(uri).check()
        return str(error.value)

    assert "refused these credentials" in refused("s3://present/ray_results", AWS_SECRET_ACCESS_KEY="not-the-secret")
    nobody = f"http://127.0.0.1:{free_port()}"
    assert f"storage endpoint {nobody} is unreachable" in refused("s3://present/ray_results", AWS_ENDPOINT_URL=nobody)
    # the endpoint in pyarrow's URI form, as Tune also takes it
    assert f"storage endpoint {nobody} is unreachable" in refused(
        f"s3://present/ray_results?endpoint_override={nobody.removeprefix('http://')}&scheme=http")
    assert "--storage-path 'nope://x'" in refused("nope://x")
    assert s3.keys("present") == []  # the write check leaves nothing behind
    Storage.parse("s3://present/ray_results").check()  # and passes with the right settings
    local = Storage.parse(f"file://{tmp_path}/results")  # a file:// URI is a folder, as a plain path is
    local.check()
    assert not local.remote and local.experiment("x") == str(tmp_path / "results" / "x")


@pytest.mark.slow
@pytest.mark.long
def test_a_sweep_keeps_its_state_in_the_bucket_and_resumes_from_the_bucket_alone(tmp_path, s3, monkeypatch):
    for key, value in s3.env.items():
        monkeypatch.setenv(key, value)
    bucket = s3.create_bucket("sweeps")
    (tmp_path / "mlflow").mkdir()
    server = MlflowServer(tmp_path / "mlflow", artifacts=f"s3://{bucket}/mlflow", env=s3.env)
    try:
        write_space(tmp_path, """
            family: diffusion
            parameters:
              schedule: {values: [linear, cosine, sigmoid]}
        """, iterations=4)
        storage = f"s3://{bucket}/ray_results"
        args = ["--num-cpus", "2", "--max-concurrent", "1", "--tracking-uri", server.uri, "--storage-path", storage]
        client, experiment, _ = interrupt_when(tmp_path, server, ["tiny", *args], "tiny",
                                               "metrics.`train/loss` > 0 and attributes.status = 'FINISHED'")
        state = s3.keys(bucket, "ray_results/")
        assert any(k.split("/")[-1].startswith("experiment_state") for k in state), state
        assert any("/checkpoint_" in k for k in state), state
        assert not (tmp_path / "ray_results").exists()

        fresh = tmp_path / "fresh"  # no search_spaces/, no ray_results/: the space by path, the state from S3
        fresh.mkdir()
        resumed = run_cli([str(tmp_path / "search_spaces" / "tiny.yaml"), "--resume", *args], cwd=fresh)
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        assert "(resumed)" in resumed.stdout and f"Tune: s3://{bucket}/ray_results/tiny-" in resumed.stdout
        assert not (fresh / "ray_results").exists()

        runs = client.search_runs([experiment.experiment_id], "tags.`sweep.config_id` != ''")
        assert sorted(r.data.params["schedule"] for r in runs) == ["cosine", "linear", "sigmoid"]  # no run twice
        for run in runs:
            assert run.info.status == "FINISHED"
            steps = [m.step for m in client.get_metric_history(run.info.run_id, "train/loss")]
            assert sorted(steps) == sorted(set(steps)) and len(steps) == 4, steps  # each step once
        artifacts = s3.keys(bucket, "mlflow/")
        assert any("/checkpoint/" in k for k in artifacts) and any(k.endswith("MLmodel") for k in artifacts)

        for key in s3.env:  # report and use reach the artifacts through the tracking server only
            monkeypatch.delenv(key)
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        # MLflow 3 clients fetch S3 artifacts with presigned URLs, straight from the bucket; moto's credential
        # checking answers those with 500 (real S3 and MinIO do not), so these stream through the server
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | {
            "PYTHONPATH": str(REPO), "MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD": "false"}
        report = subprocess.run([sys.executable, "-m", "orchestration.report", "tiny", "--tracking-uri", server.uri],
                                cwd=elsewhere, env=env, capture_output=True, text=True, timeout=120)
        assert report.returncode == 0, report.stderr
        assert all(schedule in report.stdout for schedule in ("cosine", "linear", "sigmoid")), report.stdout
        use = subprocess.run([sys.executable, "-m", "orchestration.use", "tiny", "--tracking-uri", server.uri,
                              "--samples", "4", "--out", "out"], cwd=elsewhere, env=env, capture_output=True,
                             text=True, timeout=300)
        assert use.returncode == 0, use.stderr[-3000:]
        assert (elsewhere / "out" / "samples.png").stat().st_size > 0
        assert sorted(p.name for p in elsewhere.iterdir()) == ["out"]  # nothing else was read or written here
    finally:
        server.stop()
