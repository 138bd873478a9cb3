"""Benchmark (not a test): peak memory of a default sweep, Ray's processes included.

Starts `python -m orchestration.sweep SWEEP` (default: diffusion, the README's first command) and
samples its whole process tree twice a second: the driver, the Ray processes it starts (GCS, raylet,
dashboard, log monitor) and the trial workers under the raylet. Reports the peak of the summed RSS
(counts shared pages once per process, so it overstates) and of the summed PSS (shares them out,
the better estimate of what the sweep really occupies), plus the driver's and the largest process's peaks.

    python bench/memory.py                 # the default diffusion sweep, about 10 minutes
    python bench/memory.py --sweep rl
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
from common import ROOT, write_result


def pss_kb(pid: int) -> int:
    """Proportional set size from /proc (Linux); 0 if the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def sample_tree(root: psutil.Process) -> dict:
    procs = [root]
    try:
        procs += root.children(recursive=True)
    except psutil.NoSuchProcess:
        return {}
    rss, names = {}, {}
    for proc in procs:
        try:
            rss[proc.pid] = proc.memory_info().rss
            names[proc.pid] = proc.name()
        except psutil.NoSuchProcess:
            continue
    pss = sum(pss_kb(pid) for pid in rss) * 1024
    largest = max(rss, key=rss.get) if rss else None
    return {"rss": sum(rss.values()), "pss": pss, "driver_rss": rss.get(root.pid, 0), "processes": len(rss),
            "largest_rss": rss.get(largest, 0), "largest_name": names.get(largest, "")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweep", default="diffusion")
    parser.add_argument("--interval", type=float, default=0.5)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="passed to the sweep")
    args = parser.parse_args()
    gb = 2**30
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        cmd = [sys.executable, "-m", "orchestration.sweep", args.sweep, "--storage-path", f"{tmp}/ray_results",
               "--tracking-uri", f"sqlite:///{tmp}/mlflow.db",
               *(arg for kv in args.set for arg in ("--set", kv))]
        print("$", " ".join(cmd), flush=True)
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL)
        root, peak = psutil.Process(proc.pid), {}
        while proc.poll() is None:
            sample = sample_tree(root)
            for key, value in sample.items():
                if key == "largest_name":
                    continue
                if value > peak.get(key, -1):
                    peak[key] = value
                    if key == "largest_rss":
                        peak["largest_name"] = sample["largest_name"]
            time.sleep(args.interval)
        wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"the sweep exited with {proc.returncode}")
    result = {"sweep": args.sweep, "overrides": args.set, "wall_s": round(wall, 1), "peak_tree_rss_gb": round(peak["rss"] / gb, 2),
              "peak_tree_pss_gb": round(peak["pss"] / gb, 2), "peak_driver_rss_gb": round(peak["driver_rss"] / gb, 2),
              "peak_largest_process_rss_gb": round(peak["largest_rss"] / gb, 2),
              "largest_process": peak["largest_name"], "peak_processes": peak["processes"]}
    print(result)
    write_result(f"memory_{args.sweep}", result)


if __name__ == "__main__":
    main()
