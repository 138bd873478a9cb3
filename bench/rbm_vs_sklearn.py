"""Benchmark (not a test): our RBM against scikit-learn's BernoulliRBM on binarised digits, over seeds.

scikit-learn's BernoulliRBM trains by persistent contrastive divergence (one Gibbs round per update, chains
as many as the batch). Sides, per seed, one after another in one process with one thread (the order rotates
by seed):
- `sklearn`: BernoulliRBM at its defaults (n_components=256, learning_rate=0.1, batch_size=10, n_iter=10);
- `ours_matched`: ours with the same algorithm and settings: PCD-1, batch 10, no momentum, no weight decay,
  the images in one fixed order (scikit-learn does not reshuffle between epochs);
- `ours_recipe`: ours at the same H, lr and epochs with batch 20, momentum 0.5 and reshuffling every epoch
  (half the updates, each carried on by momentum; the family's defaults for all three).
Both are trained on the same 80% of the images (algorithms/rbm/trainer.py's fixed split) and scored
on the other 20% by the same code: the pseudo-log-likelihood averaged over every unit (the expectation of
scikit-learn's one-unit `score_samples`, which is reported too) and the AIS estimate of the log-likelihood.
The clock covers training only (`fit`, `train`): per seed, the sides train in turn `--repeats` times (the
same seed trains the same model each time) and each keeps its median, after one untimed warm-up of each.

    python bench/rbm_vs_sklearn.py
    python bench/rbm_vs_sklearn.py --seeds 0 1 --epochs 5
"""

from __future__ import annotations

import argparse
import time

from common import write_result

SIDES = ("sklearn", "ours_matched", "ours_recipe")


def score(rbm, trainer) -> dict:
    """Held-out scores of `rbm` by the trainer's evaluation (the same for every side)."""
    trainer.rbm = rbm
    scores = trainer.evaluate()
    return {"pseudo_log_likelihood": scores["eval/pseudo_log_likelihood"],
            "log_likelihood": scores["eval/log_likelihood"],
            "log_likelihood_ci": [scores["eval/log_likelihood_ci_low"], scores["eval/log_likelihood_ci_high"]]}


def train_once(side: str, seed: int, args, data):
    """One timed training: (seconds, the trained RBM, the trainer that scores it, scikit-learn's own score)."""
    import torch
    from sklearn.neural_network import BernoulliRBM

    from algorithms.rbm import FAMILY
    from algorithms.rbm.model import RBM
    from algorithms.rbm.trainer import RBMTrainer

    recipe = ({"batch_size": 20, "momentum": 0.5} if side == "ours_recipe"
              else {"batch_size": 10, "momentum": 0.0, "shuffle": False})
    config = FAMILY.resolve({"training": "pcd", "k": 1, "hidden": args.hidden, "lr": args.lr, "weight_decay": 0.0,
                             "seed": seed, "ais_chains": 100, "ais_steps": 2000, **recipe})
    trainer = RBMTrainer(config, data=data)
    if side != "sklearn":
        start = time.perf_counter()
        trainer.train(args.epochs)
        return time.perf_counter() - start, trainer.rbm, trainer, None
    theirs = BernoulliRBM(n_components=args.hidden, learning_rate=args.lr, batch_size=10, n_iter=args.epochs,
                          random_state=seed)
    start = time.perf_counter()
    theirs.fit(trainer.train_v.numpy())
    seconds = time.perf_counter() - start
    rbm = RBM(trainer.rbm.visible, args.hidden)
    rbm.W = torch.as_tensor(theirs.components_.T, dtype=torch.float32).contiguous()
    rbm.b = torch.as_tensor(theirs.intercept_visible_, dtype=torch.float32)
    rbm.c = torch.as_tensor(theirs.intercept_hidden_, dtype=torch.float32)
    return seconds, rbm, trainer, float(theirs.score_samples(trainer.test_v.numpy()).mean())


def run_seed(seed: int, order: tuple, args, data) -> list[dict]:
    """Every side for one seed; the timed trainings interleave (side after side, `repeats` rounds), so the
    machine's drift reaches each side alike; the same seed trains the same model each round."""
    times = {side: [] for side in order}
    for _ in range(args.repeats):
        for side in order:
            seconds, rbm, trainer, theirs = train_once(side, seed, args, data)
            times[side].append(seconds)
    runs = []
    for side in order:
        seconds, rbm, trainer, theirs = train_once(side, seed, args, data)
        extra = {} if theirs is None else {"sklearn_score_samples": theirs}
        runs.append({"side": side, "seed": seed, "train_s": round(sorted(times[side])[args.repeats // 2], 3),
                     "train_s_all": [round(t, 3) for t in times[side]], **score(rbm, trainer), **extra})
    return runs


def summarize(runs: list[dict]) -> dict:
    """Per side: mean and t interval over seeds; each of ours against scikit-learn, paired by seed."""
    from orchestration.aggregate import paired_difference, t_interval

    def by_seed(side: str, key: str) -> dict:
        return {r["seed"]: r[key] for r in runs if r["side"] == side}

    summary = {}
    for side in SIDES:
        entry = {}
        for key in ("train_s", "pseudo_log_likelihood", "log_likelihood"):
            values = list(by_seed(side, key).values())
            ci = t_interval(values)
            entry[key] = {"mean": sum(values) / len(values), "ci": [ci.low, ci.high] if ci else None}
        if side != "sklearn":
            pl = paired_difference(by_seed(side, "pseudo_log_likelihood"), by_seed("sklearn", "pseudo_log_likelihood"))
            theirs, mine = by_seed("sklearn", "train_s"), by_seed(side, "train_s")
            entry["pl_minus_sklearn_ci"] = [pl.low, pl.high] if pl else None
            entry["speedup_per_seed"] = [round(theirs[s] / mine[s], 2) for s in sorted(mine)]
        summary[side] = entry
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--hidden", type=int, default=256, help="scikit-learn's default n_components")
    parser.add_argument("--lr", type=float, default=0.1, help="scikit-learn's default learning_rate")
    parser.add_argument("--epochs", type=int, default=10, help="scikit-learn's default n_iter")
    parser.add_argument("--repeats", type=int, default=5, help="timed trainings per side and seed (median kept)")
    args = parser.parse_args()

    import torch
    from threadpoolctl import threadpool_limits

    from algorithms.data import load_digits

    torch.set_num_threads(1)
    data = load_digits()
    runs = []
    with threadpool_limits(1):  # numpy's BLAS on one thread too
        warm = argparse.Namespace(**{**vars(args), "epochs": 1})
        for side in SIDES:  # first calls pay one-off costs (allocator, lazy imports)
            train_once(side, 0, warm, data)
        for i, seed in enumerate(args.seeds):
            for r in run_seed(seed, SIDES[i % 3:] + SIDES[:i % 3], args, data):
                runs.append(r)
                print(f"{r['side']} seed {seed}: {r['train_s']} s (median of {r['train_s_all']}), test "
                      f"pseudo-log-likelihood {r['pseudo_log_likelihood']:.2f}, AIS log-likelihood "
                      f"{r['log_likelihood']:.2f}", flush=True)
    write_result("rbm_vs_sklearn", {"hidden": args.hidden, "lr": args.lr, "epochs": args.epochs, "threads": 1,
                                    "dataset": "digits (binarised at mid-grey)", "runs": runs,
                                    "summary": summarize(runs)})


if __name__ == "__main__":
    main()
