"""Benchmark (not a test): peak memory of a default sweep, Ray's processes included.

Starts `python -m orchestration.sweep SWEEP` (default: diffusion, the README's first command) and
samples its whole process tree (from /proc, Linux) twice a second: the driver, the Ray processes it starts (GCS, raylet,
dashboard, log monitor) and the trial workers under the raylet. Reports the peak of the summed RSS
(counts shared pages once per process, so it overstates) and of the summed PSS (shares them out,
the better estimate of what the sweep really occupies), plus the driver's and the largest process's peaks.

    python bench/memory.py                 # the default diffusion sweep, about 10 minutes
    python bench/memory.py --sweep rl
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from pathlib import Path

from common import ROOT, sweep_command, write_result


def proc_status(pid: int) -> dict[str, str]:
    """/proc/PID/status as a dict (Linux); empty if the process is gone."""
    try:
        return dict(line.split(":\t", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                    if ":\t" in line)
    except OSError:
        return {}


def pss_kb(pid: int) -> int:
    """Proportional set size from /proc/PID/smaps_rollup; 0 if the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def process_tree(root: int) -> dict[int, dict[str, str]]:
    """root and all its descendants, by parent pid."""
    status = {int(p.name): proc_status(int(p.name)) for p in Path("/proc").iterdir() if p.name.isdigit()}
    children: dict[int, list[int]] = {}
    for pid, st in status.items():
        if "PPid" in st:
            children.setdefault(int(st["PPid"]), []).append(pid)
    tree, todo = {}, [root]
    while todo:
        pid = todo.pop()
        if status.get(pid):
            tree[pid] = status[pid]
            todo += children.get(pid, [])
    return tree


def sample_tree(root: int) -> dict:
    tree = process_tree(root)
    rss = {pid: int(st.get("VmRSS", "0 kB").split()[0]) * 1024 for pid, st in tree.items()}
    if not rss:
        return {}
    largest = max(rss, key=rss.get)
    return {"rss": sum(rss.values()), "pss": sum(pss_kb(pid) for pid in rss) * 1024, "driver_rss": rss.get(root, 0),
            "processes": len(rss), "largest_rss": rss[largest], "largest_name": tree[largest].get("Name", "").strip()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweep", default="diffusion")
    parser.add_argument("--interval", type=float, default=0.5)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="passed to the sweep")
    args = parser.parse_args()
    gb = 2**30
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        cmd = sweep_command(args.sweep, Path(tmp), *(arg for kv in args.set for arg in ("--set", kv)))
        print("$", " ".join(cmd), flush=True)
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL)
        root, peak = proc.pid, {}
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
    result = {"sweep": args.sweep, "overrides": args.set, "wall_s": round(wall, 1),
              "peak_tree_rss_gb": round(peak["rss"] / gb, 2),
              "peak_tree_pss_gb": round(peak["pss"] / gb, 2), "peak_driver_rss_gb": round(peak["driver_rss"] / gb, 2),
              "peak_largest_process_rss_gb": round(peak["largest_rss"] / gb, 2),
              "largest_process": peak["largest_name"], "peak_processes": peak["processes"]}
    print(result)
    write_result(f"memory_{args.sweep}", result)


if __name__ == "__main__":
    main()
