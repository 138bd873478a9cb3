"""Benchmark (not a test): our GAN against our DDPM at equal training seconds on digits, over seeds.

For each seed both sides train alone, one after the other (the order alternates by seed, so the machine's
drift does not favour one side), for the same number of training seconds, with one torch thread. The
seconds count training steps only; the scores are then computed the same way for both: FID of 500
samples against the data set's feature statistics, with diffusion's 95% evaluation-noise interval, and the
mode coverage and class KL of 1,000 samples (algorithms/gan/coverage.py). Each side runs at its family's
defaults (what a sweep trial gets; diffusion: cosine schedule, T = 1000, 50 DDIM steps to sample).
The comparison is the paired difference GAN - DDPM per seed, with a t interval over seeds.

    python bench/gan_vs_ddpm.py                       # 120 s each, seeds 0 1 2
    python bench/gan_vs_ddpm.py --seconds 30 --seeds 0
"""

from __future__ import annotations

import argparse
import tempfile
import time

from common import write_result

SIDES = ("gan", "ddpm")


def build(side: str, seed: int, cache_dir: str, data):
    if side == "gan":
        from algorithms.gan import FAMILY
        from algorithms.gan.trainer import GANTrainer

        return GANTrainer(FAMILY.resolve({"seed": seed, "cache_dir": cache_dir}), data=data)
    from algorithms.diffusion import FAMILY
    from algorithms.diffusion.trainer import DiffusionTrainer

    return DiffusionTrainer(FAMILY.resolve({"seed": seed, "cache_dir": cache_dir}), data=data)


def run(side: str, seed: int, seconds: float, cache_dir: str, data) -> dict:
    """Train for `seconds` of steps, then FID with its interval and mode coverage of the trained model."""
    from algorithms.gan.coverage import mode_scores, predict_classes

    trainer = build(side, seed, cache_dir, data)
    trained, steps = 0.0, 0
    while trained < seconds:
        start = time.perf_counter()
        trainer.train(25)
        trained += time.perf_counter() - start
        steps += 25
    scorer = trainer.scorer
    start = time.perf_counter()
    fid = scorer.score_with_interval(trainer.generate(500, seed=seed + 1), data.images, seed=seed)
    modes = mode_scores(predict_classes(scorer.classifier, trainer.generate(1000, seed=seed + 3)),
                        data.labels.numpy(), data.num_classes, seed=seed)
    return {"side": side, "seed": seed, "train_s": round(trained, 1), "steps": steps,
            "score_s": round(time.perf_counter() - start, 1), **{k: float(v) for k, v in {**fid, **modes}.items()}}


def summarize(runs: list[dict]) -> dict:
    """Per side: mean and t interval over seeds of each score; GAN - DDPM paired by seed."""
    from orchestration.aggregate import paired_difference, t_interval

    summary = {}
    for key in ("fid", "mode_coverage", "class_kl", "steps"):
        by_side = {side: {r["seed"]: r[key] for r in runs if r["side"] == side} for side in SIDES}
        entry = {}
        for side, values in by_side.items():
            ci = t_interval(list(values.values()))
            entry[side] = {"mean": sum(values.values()) / len(values), "per_seed": list(values.values()),
                           "ci": [ci.low, ci.high] if ci else None}
        diff = paired_difference(by_side["gan"], by_side["ddpm"])
        entry["gan_minus_ddpm_ci"] = [diff.low, diff.high] if diff else None
        summary[key] = entry
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0, help="training seconds per side and seed")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()

    import torch

    from algorithms.data import load_digits

    torch.set_num_threads(1)
    data = load_digits()
    runs = []
    with tempfile.TemporaryDirectory() as cache_dir:  # one FID classifier for both sides, trained here
        for i, seed in enumerate(args.seeds):
            for side in (SIDES if i % 2 == 0 else SIDES[::-1]):
                runs.append(run(side, seed, args.seconds, cache_dir, data))
                r = runs[-1]
                print(f"{side} seed {seed}: {r['steps']} steps in {r['train_s']} s; FID {r['fid']:.1f} "
                      f"[{r['fid_ci_low']:.1f}, {r['fid_ci_high']:.1f}], mode coverage {r['mode_coverage']:.2f}, "
                      f"class KL {r['class_kl']:.3f}", flush=True)
    write_result("gan_vs_ddpm", {"seconds": args.seconds, "threads": 1, "dataset": "digits", "runs": runs,
                                 "summary": summarize(runs)})


if __name__ == "__main__":
    main()
