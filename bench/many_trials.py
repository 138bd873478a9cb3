"""Benchmark (not a test): a sweep of many short trials on a 3-node local cluster with an MLflow server.

Starts a head and 2 worker nodes (`ray start`, each with its own temp dir and --num-cpus, as the long
tests do) and an MLflow tracking server on 127.0.0.1, then runs `python -m orchestration.sweep` with
--address on a random search of N tiny diffusion trials (bench/spaces/many_trials.yaml: one iteration of a
few steps, FID from 64 samples), and measures:
- the driver's peak RSS (sampled every 0.5 s);
- the scheduling overhead per trial: the trial phase's wall time (first trial's MLflow run start to the
  last one's end) against the sum of the trials' own times (their MLflow runs' durations) over the slots,
  per trial and slot: (wall - sum / slots) * slots / N;
- the end of the sweep (results, plots, registry): the last trial's end to the driver's exit;
- `python -m orchestration.report` against the server.
With --s3 the checkpoints and Tune's state go to an S3 server started here (moto's, as in the tests) and the
result is kept as many_trials_s3.json: what object storage costs per trial.

    python bench/many_trials.py                 # 1,000 trials (about 15-20 minutes on 2 cores)
    python bench/many_trials.py --trials 100 --s3
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from common import ROOT, shown_path, write_result

sys.path.insert(0, str(ROOT / "tests"))  # the tests' real cluster and server starters

SPACE = ROOT / "bench" / "spaces" / "many_trials.yaml"


def peak_rss_mb(pid: int, stop: threading.Event, peak: list[float]) -> None:
    import psutil

    process = psutil.Process(pid)
    while not stop.is_set():
        try:
            peak[0] = max(peak[0], process.memory_info().rss / 2**20)
        except psutil.Error:
            return
        stop.wait(0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--cpus-per-node", type=int, default=1, help="trial slots per node (3 nodes)")
    parser.add_argument("--s3", action="store_true", help="checkpoints and state in an S3 server started here")
    args = parser.parse_args()

    from conftest import MlflowServer
    from test_multinode import TOKEN_ENV, local_cluster

    from orchestration.tracking import PARENT_TAG, all_runs

    workdir = Path(tempfile.mkdtemp(prefix="many_trials-"))
    server = MlflowServer(workdir)
    storage, storage_env, s3 = str(workdir / "ray_results"), {}, None
    if args.s3:
        from object_store import S3Server

        s3 = S3Server(workdir)
        storage, storage_env = f"s3://{s3.create_bucket('sweeps')}/ray_results", s3.env
    try:
        with local_cluster(workdir, [f"--num-cpus={args.cpus_per_node}"], workers=2) as nodes:
            command = [sys.executable, "-m", "orchestration.sweep", str(SPACE), "--address", nodes["address"],
                       "--tracking-uri", server.uri, "--storage-path", storage,
                       "--num-samples", str(args.trials), "--verbose", "0"]
            print("$", " ".join(command), flush=True)
            stop, peak = threading.Event(), [0.0]
            started = time.time()
            with open(workdir / "sweep.txt", "w") as out:
                sweep = subprocess.Popen(command, cwd=workdir, stdout=out, stderr=subprocess.STDOUT,
                                         env={**os.environ, "PYTHONPATH": str(ROOT), **TOKEN_ENV, **storage_env})
                sampler = threading.Thread(target=peak_rss_mb, args=(sweep.pid, stop, peak), daemon=True)
                sampler.start()
                code = sweep.wait()
            ended = time.time()
            stop.set()
            if code != 0:
                raise SystemExit(f"the sweep exited {code}: {(workdir / 'sweep.txt').read_text()[-3000:]}")

        client = server.client()
        experiment = client.get_experiment_by_name("many_trials")
        parent = all_runs(client, [experiment.experiment_id], "tags.`sweep.name` = 'many_trials'")[0]
        runs = all_runs(client, [experiment.experiment_id], f"tags.`{PARENT_TAG}` = '{parent.info.run_id}'")
        runs = [r for r in runs if r.info.end_time]
        slots = 3 * args.cpus_per_node
        first_start = min(r.info.start_time for r in runs) / 1000
        last_end = max(r.info.end_time for r in runs) / 1000
        trial_s = sum((r.info.end_time - r.info.start_time) / 1000 for r in runs)
        phase = last_end - first_start
        report_started = time.time()
        report = subprocess.run([sys.executable, "-m", "orchestration.report", "many_trials", "--tracking-uri",
                                 server.uri, "--format", "csv"], cwd=workdir, capture_output=True, text=True,
                                env={**os.environ, "PYTHONPATH": str(ROOT)})
        report_s = time.time() - report_started
        assert report.returncode == 0, report.stderr[-2000:]
        rows = len(report.stdout.strip().splitlines()) - 1
        result = {
            "space": shown_path(SPACE), "storage": "s3 (moto)" if args.s3 else "local folder",
            "trials": args.trials, "finished_runs": len(runs), "report_rows": rows,
            "nodes": 3, "slots": slots,
            "driver_peak_rss_mb": round(peak[0]),
            "start_to_first_trial_s": round(first_start - started, 1),
            "trial_phase_s": round(phase, 1), "sum_trial_s": round(trial_s, 1),
            "mean_trial_s": round(trial_s / len(runs), 2),
            "overhead_per_trial_s": round((phase - trial_s / slots) * slots / len(runs), 3),
            "end_of_sweep_s": round(ended - last_end, 1), "report_s": round(report_s, 1),
            "sweep_wall_s": round(ended - started, 1)}
        print(result)
        write_result("many_trials_s3" if args.s3 else "many_trials", result)
    finally:
        server.stop()
        if s3:
            s3.stop()


if __name__ == "__main__":
    main()
