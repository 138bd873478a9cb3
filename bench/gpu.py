"""Benchmark (not a test): how many trials should share one GPU? Trials per GPU against throughput and utilisation.

For each family (diffusion, contrastive) and k in 1, 2, 4, 8: k processes start at once, each building the
family's Experiment on the GPU exactly as one sweep trial does (1 CPU thread, the default search-space values
on digits), and each runs one untimed iteration and then `--iterations` timed ones (training steps plus the
family's evaluation, as in a sweep). Meanwhile NVML samples the GPU's utilisation and memory. Reported per k:
training images/s per trial and in total, trial iterations per minute in total, mean and peak utilisation,
peak memory. With 1/k GPU per trial (`--gpus-per-trial`), Ray packs k trials on a GPU: the best k is the
smallest one after which the total stops growing.

Before that, a correctness check on the GPU: each family's checkpoint, written on the GPU, restores on the
GPU and on the CPU (a trial that resumes on another node).

    python bench/gpu.py                  # exits with one line when no CUDA GPU is visible
    BENCH_GIT_COMMIT=$(git rev-parse --short=12 HEAD) python bench/gpu.py   # on a copy without the history
    python bench/gpu.py --trials 1 2 4 --iterations 2
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from common import ROOT, write_result

CONFIGS = {  # the defaults, with iterations short enough for many k
    "diffusion": {"dataset": "digits", "steps_per_iteration": 100, "eval_samples": 500},
    "contrastive": {"dataset": "digits", "steps_per_iteration": 50},
}


def build(family_name: str, device: str, iterations: int):
    from orchestration.family import load_family

    family = load_family(family_name)
    return family.build_experiment(family.resolve({**CONFIGS[family_name], "device": device,
                                                   family.budget_param: iterations}))


def trial(family_name: str, iterations: int, device: str, start, results) -> None:
    """One trial's process: build, one untimed iteration (cuDNN autotuning, caches), then the timed ones
    in step with the others."""
    import torch

    torch.set_num_threads(1)
    experiment = build(family_name, device, iterations + 1)
    experiment.step()
    start.wait()
    began, images = time.perf_counter(), []
    for _ in range(iterations):
        metrics = experiment.step()
        images.append(metrics["train/images_per_s"])
    gpu = device == "cuda"
    if gpu:
        torch.cuda.synchronize()
    results.put({"wall_s": time.perf_counter() - began, "train_images_per_s": statistics.mean(images),
                 "peak_allocated_mb": torch.cuda.max_memory_allocated() / 2**20 if gpu else 0.0})


class GpuSampler(threading.Thread):
    """NVML utilisation (percent of time a kernel ran) and used memory, every 0.2 s."""

    def __init__(self):
        super().__init__(daemon=True)
        import pynvml

        pynvml.nvmlInit()
        self.nvml, self.handle = pynvml, pynvml.nvmlDeviceGetHandleByIndex(0)
        self.util, self.memory_mb, self.running = [], [], True

    def run(self) -> None:
        while self.running:
            self.util.append(self.nvml.nvmlDeviceGetUtilizationRates(self.handle).gpu)
            self.memory_mb.append(self.nvml.nvmlDeviceGetMemoryInfo(self.handle).used / 2**20)
            time.sleep(0.2)


def pack(family_name: str, k: int, iterations: int, device: str = "cuda") -> dict:
    ctx = mp.get_context("spawn")
    start, results = ctx.Barrier(k + 1), ctx.Queue()
    workers = [ctx.Process(target=trial, args=(family_name, iterations, device, start, results)) for _ in range(k)]
    for worker in workers:
        worker.start()
    start.wait()
    sampler = GpuSampler() if device == "cuda" else None
    if sampler:
        sampler.start()
    began = time.perf_counter()
    done = [results.get(timeout=1800) for _ in range(k)]
    wall = time.perf_counter() - began
    for worker in workers:
        worker.join()
    if sampler:
        sampler.running = False
    busy = (sampler.util[2:] or sampler.util) if sampler else [0]  # the first samples precede the first kernels
    return {"trials": k, "wall_s": round(wall, 1),
            "train_images_per_s_per_trial": round(statistics.mean(d["train_images_per_s"] for d in done), 1),
            "train_images_per_s_total": round(sum(d["train_images_per_s"] for d in done), 1),
            "trial_iterations_per_min": round(60 * k * iterations / wall, 2),
            "gpu_util_mean": round(statistics.mean(busy), 1), "gpu_util_max": max(busy),
            "gpu_memory_peak_mb": round(max(sampler.memory_mb)) if sampler else 0,
            "torch_peak_allocated_mb_per_trial": round(max(d["peak_allocated_mb"] for d in done))}


def checkpoint_round_trip(family_name: str, written_on: str = "cuda") -> dict:
    """Written on the GPU; restored on the GPU and on the CPU, and both continue training."""
    with tempfile.TemporaryDirectory() as tmp:
        trained = build(family_name, written_on, 3)
        trained.step()
        trained.save(Path(tmp))
        outcome = {}
        for device in dict.fromkeys((written_on, "cpu")):
            restored = build(family_name, device, 3)
            try:
                restored.restore(Path(tmp))
                loss = restored.step()["train/loss"]
                outcome[device] = f"ok (next loss {loss:.4g})"
            except Exception as err:  # recorded, so one broken path does not hide the others
                outcome[device] = f"FAILED: {type(err).__name__}: {err}"
        return outcome


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--trials", nargs="+", type=int, default=[1, 2, 4, 8])
    parser.add_argument("--iterations", type=int, default=3, help="timed iterations per trial")
    parser.add_argument("--dry-run-on-cpu", action="store_true", help="check the script here: the same on the CPU, "
                                                                       "nothing written")
    args = parser.parse_args()

    import torch

    if args.dry_run_on_cpu:
        for family_name in args.families:
            print(family_name, checkpoint_round_trip(family_name, "cpu"), pack(family_name, 2, 1, "cpu"))
        return
    if not torch.cuda.is_available():
        sys.exit("bench/gpu.py: no CUDA GPU is visible to torch: nothing to measure (run it on a GPU node)")
    device = torch.cuda.get_device_name(0)
    slug = "".join(c if c.isalnum() else "_" for c in device.lower()).strip("_")
    results = {"device": device, "iterations": args.iterations, "configs": CONFIGS, "families": {}}
    for family_name in args.families:
        checks = checkpoint_round_trip(family_name)
        print(f"{family_name} checkpoint written on the GPU, restored on: {checks}", flush=True)
        rows = []
        for k in args.trials:
            rows.append(pack(family_name, k, args.iterations))
            print(family_name, rows[-1], flush=True)
        results["families"][family_name] = {"checkpoint_restore": checks, "packing": rows}
        write_result(f"gpu_{slug}", results)  # after each family, so a run cut short keeps what it measured


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
