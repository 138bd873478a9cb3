"""Benchmark (not a test): what the training speed-ups (`precision`, `compile`, `channels_last`) do to training
throughput, here on the CPU (on a GPU with `--device cuda`), for the diffusion and contrastive families.

Each measurement is a fresh process with one torch thread, as one sweep trial has: it builds the family's
Experiment with the default values on digits plus the option, times its first training step (for `compile`,
the compilation), runs 10 untimed warm-up steps, then trains for `--seconds` and reports training images/s
(training steps only; the families' evaluation always runs in fp32 and is not timed). The options run in
turn, `--repeats` rounds, so a slow spell of the machine touches every option alike. Reported as measured,
slower or not.

    python bench/speedups.py                       # CPU, 3 rounds
    python bench/speedups.py --device cuda         # on a GPU node
    python bench/speedups.py --families contrastive   # re-run one family; the other's results are kept
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import time

from common import earlier_blocks, provenance, write_result

OPTIONS = {"fp32": {}, "bf16": {"precision": "bf16"}, "fp16": {"precision": "fp16"},
           "channels_last": {"channels_last": True}, "compile": {"compile": True},
           "bf16 + compile": {"precision": "bf16", "compile": True}}
FAMILIES = ("diffusion", "contrastive")


def measure(family_name: str, options: dict, device: str, seconds: float, queue) -> None:
    import torch

    from orchestration.family import load_family

    torch.set_num_threads(1)
    family = load_family(family_name)
    experiment = family.build_experiment(family.resolve({"dataset": "digits", "device": device, **options}))
    train = experiment.trainer.train if family_name == "diffusion" else experiment.train
    started = time.perf_counter()
    first_loss = train(1)["train/loss"]
    first_step_s = time.perf_counter() - started
    train(10)
    images = elapsed = 0.0
    batch = experiment.config["batch_size"]
    while elapsed < seconds:
        began = time.perf_counter()
        metrics = train(5)
        elapsed += time.perf_counter() - began
        images += 5 * batch
    queue.put({"first_step_s": round(first_step_s, 2), "images_per_s": round(images / elapsed, 1),
               "first_loss": round(first_loss, 4), "loss": round(metrics["train/loss"], 4)})


def run_one(family: str, options: dict, device: str, seconds: float) -> dict:
    context = mp.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=measure, args=(family, options, device, seconds, queue))
    process.start()
    result = queue.get(timeout=1800)
    process.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=8.0, help="timed training per measurement")
    parser.add_argument("--families", nargs="+", default=list(FAMILIES), choices=FAMILIES)
    parser.add_argument("--options", nargs="+", default=list(OPTIONS), choices=list(OPTIONS))
    args = parser.parse_args()
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise SystemExit("bench/speedups.py --device cuda: no CUDA GPU is visible")
    runs = {family: {name: [] for name in args.options} for family in args.families}
    for repeat in range(args.repeats):
        for family in args.families:
            for name in args.options:
                result = run_one(family, OPTIONS[name], args.device, args.seconds)
                runs[family][name].append(result)
                print(f"round {repeat + 1}: {family} {name}: {result}", flush=True)
    families = earlier_blocks(f"speedups_{args.device}", "families", set(args.families))
    for family, by_option in runs.items():
        families[family] = {"summary": summarise(by_option), "runs": by_option, "ran": provenance()}
    write_result(f"speedups_{args.device}", {"device": args.device, "repeats": args.repeats, "seconds": args.seconds,
                                             "options": OPTIONS, "families": families})


def summarise(by_option: dict[str, list[dict]]) -> dict:
    """Median and range of images/s per option, and each option against fp32 measured in the same round."""
    base, summary = by_option.get("fp32"), {}
    for name, results in by_option.items():
        speeds = [r["images_per_s"] for r in results]
        row = {"median_images_per_s": statistics.median(speeds), "range_images_per_s": [min(speeds), max(speeds)],
               "median_first_step_s": statistics.median(r["first_step_s"] for r in results)}
        if base:
            row["ratio_to_fp32_per_round"] = [round(s / b["images_per_s"], 3) for s, b in zip(speeds, base)]
        summary[name] = row
    return summary


if __name__ == "__main__":
    main()
