"""Benchmark (not a test): our DQN and A2C against CleanRL's `dqn.py` and `ppo.py`, same machine, one invocation.

CleanRL runs unchanged from a checkout you point at (`--cleanrl DIR`; without it the benchmark clones
github.com/vwxyzjn/cleanrl where the network allows), in a virtual environment of its own, because CleanRL
pins gymnasium 0.29 and RLlib 2.60 pins 1.2. That venv gets the same torch version as ours.

Sides, for each env and seed, run one after another (never at the same time):
- `cleanrl_dqn`, `cleanrl_ppo`: CleanRL at its own defaults (its scripts' `Args`), `--seed S --no-cuda`.
- `ours_dqn`, `ours_a2c`: ours at the sweep's defaults (`algorithms.rl.PARAMS`: what a trial of
  `search_spaces/rl.yaml` gets), A2C with lr 2e-3 as in that sweep's grid.
- `ours_dqn_matched`, `ours_a2c_matched`: ours with CleanRL's defaults wherever the two share a setting
  (listed in MATCHED_DQN / MATCHED_A2C). What cannot match: CleanRL's dqn.py only runs one env, ours
  samples vectorised envs (16, with the same number of gradient steps per env step); A2C takes one
  gradient step per rollout where PPO takes 4 epochs x 4 minibatches.

Every side runs with one torch thread, and is observed the same way (bench/episode_clock.py): every
finished training episode is recorded, and the criterion is the first episode end at which the mean of
the last 20 episodes reaches the env's registered threshold (CartPole-v1: 475; Acrobot-v1: -100, the
`reward_threshold` gymnasium registers for it). Wall time counts from each side's first env step, so
neither side's imports and setup count. A run stops at the criterion or at a cap, and an unsolved run
counts at its cap (a ratio against it is then a bound). Each run also records the best and the last
mean return over 20 episodes, which is what compares runs that never reach the threshold.

A held-out env, which neither side's defaults were tuned on: MountainCar-v0 (threshold -110); run it with
`--envs MountainCar-v0 --no-matched`.

    python bench/vs_cleanrl.py --cleanrl ~/src/cleanrl
    python bench/vs_cleanrl.py --cleanrl ~/src/cleanrl --envs CartPole-v1 --algorithms dqn --seeds 0
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, earlier_blocks, median, our_params, provenance, shown_path, write_result
from episode_clock import WINDOW, EpisodeClock, held_crossing, outcome, target_return

CLEANRL_URL = "https://github.com/vwxyzjn/cleanrl"
CLEANRL_PACKAGES = ["gymnasium==0.29.1", "numpy<2", "tyro", "tensorboard"]
SCRIPTS = {"dqn": "cleanrl/dqn.py", "a2c": "cleanrl/ppo.py"}
# CleanRL dqn.py's defaults in our settings. It trains every 10th env step and syncs the target every 500
# env steps: with 16 envs, 16 gradient steps per 160 env steps and a sync every 50 gradient steps.
MATCHED_DQN = dict(lr=2.5e-4, gamma=0.99, n_step=1, replay_capacity=10_000, train_batch_size_per_learner=128,
                   learning_starts=10_000, rollout_steps=160, updates_per_rollout=16, target_update_freq=50,
                   tau=1.0, epsilon=(1.0, 0.05, 250_000), td_loss="mse", grad_clip=None, hidden=[120, 84])
# CleanRL ppo.py's defaults that A2C has: 4 envs x 128 steps per update, GAE(0.95), its coefficients,
# advantage normalisation, gradient-norm clip 0.5 and two separate 64-64 networks (CleanRL's use tanh, ours ReLU).
MATCHED_A2C = dict(lr=2.5e-4, gamma=0.99, lambda_=0.95, entropy_coeff=0.01, vf_loss_coeff=0.5, grad_clip=0.5,
                   normalize_advantages=True, hidden=[64, 64], shared_trunk=False)
MATCHED_A2C_SAMPLING = dict(num_envs_per_env_runner=4, rollout_fragment_length=128)


def cleanrl_checkout(path: str | None) -> Path:
    """The user's checkout, or a shallow clone in ~/.cache; one clear line when neither is there."""
    if path is None:
        path = Path.home() / ".cache" / "rl-sweeps-bench" / "cleanrl"
        if not path.exists():
            print(f"cloning {CLEANRL_URL} into {path}", flush=True)
            try:
                subprocess.run(["git", "clone", "--depth", "1", CLEANRL_URL, str(path)], check=True, timeout=120,
                               capture_output=True)
            except (subprocess.SubprocessError, OSError) as err:
                raise SystemExit(f"could not clone {CLEANRL_URL} ({type(err).__name__}); "
                                 "pass --cleanrl DIR with a checkout of it")
    path = Path(path).expanduser().resolve()
    missing = [script for script in SCRIPTS.values() if not (path / script).is_file()]
    if missing:
        raise SystemExit(f"{path} is not a CleanRL checkout: no {', '.join(missing)}")
    return path


def cleanrl_python(venv: Path) -> Path:
    """CleanRL's interpreter: a venv with its pins and our torch version, made once."""
    import torch

    python = venv / "bin" / "python"
    if not python.exists():
        print(f"creating CleanRL's venv in {venv} (gymnasium 0.29, torch {torch.__version__})", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        torch_version = torch.__version__.split("+")[0]
        subprocess.run([str(python), "-m", "pip", "install", "-q", f"torch=={torch_version}", *CLEANRL_PACKAGES],
                       check=True)
    check = subprocess.run([str(python), "-c", "import gymnasium, torch, tyro; print(gymnasium.__version__)"],
                           capture_output=True, text=True)
    if check.returncode != 0 or not check.stdout.startswith("0.29"):
        raise SystemExit(f"{venv} is not a working CleanRL venv (gymnasium 0.29, torch, tyro): "
                         f"{(check.stderr.strip().splitlines() or [check.stdout.strip()])[-1]}")
    return python


def run_cleanrl(python: Path, checkout: Path, algorithm: str, env_id: str, seed: int, max_seconds: float,
                max_steps: int) -> dict:
    """One CleanRL script, unchanged, under bench/cleanrl_runner.py's clock, in a scratch directory
    (its tensorboard logs go there)."""
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "outcome.json"
        command = [str(python), str(ROOT / "bench" / "cleanrl_runner.py"), str(out), env_id, str(max_seconds),
                   str(max_steps), str(checkout / SCRIPTS[algorithm]), "--seed", str(seed), "--env-id", env_id,
                   "--no-cuda"]
        env = {**os.environ, "PYTHONPATH": str(checkout), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        done = subprocess.run(command, cwd=scratch, env=env, capture_output=True, text=True)
        if done.returncode != 0 or not out.exists():
            raise SystemExit(f"CleanRL's {SCRIPTS[algorithm]} failed: {done.stderr.strip().splitlines()[-1:]}")
        return json.loads(out.read_text())


@functools.cache
def clocked_env(env_id: str) -> str:
    """Register `env_id` wrapped in EpisodeClock for RLlib (once); returns the registered name."""
    import gymnasium as gym
    from ray.tune import register_env

    name = f"clocked-{env_id}"
    register_env(name, lambda ctx: EpisodeClock(gym.make(env_id)))
    return name


def our_config(algorithm: str, env_id: str, seed: int, matched: bool, overrides: dict | None = None):
    """The sweep's defaults (build_config of PARAMS), or those with CleanRL's settings on top; `overrides`:
    other values of PARAMS (bench/rl_defaults.py tries candidates this way)."""
    from algorithms.rl.experiment import build_config

    flat = our_params(algorithm)
    flat.update(env=env_id, seed=seed)
    if algorithm == "a2c" and matched:
        flat.update(MATCHED_A2C_SAMPLING)
    flat.update(overrides or {})
    config = build_config(flat).environment(clocked_env(env_id)).learners(num_gpus_per_learner=0)
    if matched:
        config = config.training(**(MATCHED_DQN if algorithm == "dqn" else MATCHED_A2C))
        if algorithm == "dqn":
            config = config.env_runners(num_envs_per_env_runner=16)
    return config


def run_ours(config, env_id: str, max_seconds: float, max_steps: int) -> dict:
    """Train until a crossing of the target has held or a cap; the clock starts at the first env step."""
    target = target_return(env_id)
    EpisodeClock.clear()
    algo = config.build_algo()
    try:
        while held_crossing(EpisodeClock.episodes, target) is None and EpisodeClock.steps < max_steps and (
                EpisodeClock.started is None or time.perf_counter() - EpisodeClock.started < max_seconds):
            algo.train()
    finally:
        stopped = time.perf_counter()
        algo.stop()
    return outcome(target, stopped)


def summarize(runs: list[dict], sides: list[str], cleanrl: str, ours: str, wanted_ratio: float) -> dict:
    """Per side: solved count, medians and ranges; CleanRL's median wall time over ours, and per seed."""
    summary = {}
    for side in sides:
        mine = [r for r in runs if r["side"] == side]
        if not mine:
            continue
        summary[side] = {"solved": f"{sum(r['solved'] for r in mine)}/{len(mine)}"}
        summary[side]["held"] = f"{sum(r['held'] for r in mine)}/{len(mine)}"
        summary[side]["first_crossing_held"] = f"{sum(r['first_crossing_held'] for r in mine)}/" \
                                               f"{sum(r['solved'] for r in mine)}"
        for key in ("wall_s_to_target", "env_steps_to_target", "env_steps_per_s", "wall_s_to_held"):
            values = [r[key] for r in mine]
            summary[side][f"median_{key}"] = median(values)
            summary[side][f"range_{key}"] = [min(values), max(values)]
        for key in ("best_mean_return", "last_mean_return"):  # what the runs reached, solved or not
            values = [r[key] for r in mine if r.get(key) is not None]
            if values:
                summary[side][f"median_{key}"] = median(values)
                summary[side][f"range_{key}"] = [min(values), max(values)]
    if cleanrl in summary and ours in summary:
        by_seed = {(r["side"], r["seed"]): r for r in runs}
        seeds = [s for s in sorted({r["seed"] for r in runs}) if (cleanrl, s) in by_seed and (ours, s) in by_seed]

        def per_seed(key: str) -> list[float]:
            return [by_seed[(cleanrl, s)][key] / by_seed[(ours, s)][key] for s in seeds]

        paired, held = per_seed("wall_s_to_target"), per_seed("wall_s_to_held")
        ratio = summary[cleanrl]["median_wall_s_to_target"] / summary[ours]["median_wall_s_to_target"]
        summary["speedup"] = {"median_wall_ratio": round(ratio, 2), "per_seed": [round(p, 2) for p in paired],
                              "target": wanted_ratio, "met": min(paired) >= wanted_ratio,
                              "per_seed_held": [round(p, 2) for p in held],
                              "sample_efficiency_ratio": round(summary[cleanrl]["median_env_steps_to_target"]
                                                               / summary[ours]["median_env_steps_to_target"], 2)}
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cleanrl", help="a CleanRL checkout (default: clone it into ~/.cache/rl-sweeps-bench)")
    parser.add_argument("--cleanrl-venv", default=str(Path.home() / ".cache" / "rl-sweeps-bench" / "cleanrl-venv"),
                        help="CleanRL's own venv, created there when missing")
    parser.add_argument("--envs", nargs="+", default=["CartPole-v1", "Acrobot-v1"])
    parser.add_argument("--algorithms", nargs="+", choices=("dqn", "a2c"), default=["dqn", "a2c"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--source", help="where the checkout came from, if not a git clone (kept in the results)")
    parser.add_argument("--no-matched", action="store_true", help="skip ours at CleanRL's settings")
    parser.add_argument("--max-seconds", type=float, default=150.0, help="cap per run")
    parser.add_argument("--max-steps", type=int, default=500_000, help="cap per run (CleanRL's default budget)")
    args = parser.parse_args()
    for env_id in args.envs:
        target_return(env_id)  # one line and exit for an env without a registered threshold
    checkout = cleanrl_checkout(args.cleanrl)
    python = cleanrl_python(Path(args.cleanrl_venv).expanduser())

    import ray
    import torch

    torch.set_num_threads(1)
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    cleanrl_side = {"dqn": "cleanrl_dqn", "a2c": "cleanrl_ppo"}
    results = {}
    for env_id in args.envs:
        for algorithm in args.algorithms:
            ours = f"ours_{algorithm}"
            sides = [cleanrl_side[algorithm], ours] + ([] if args.no_matched else [f"{ours}_matched"])
            runs = []
            for seed in args.seeds:
                for side in sides:
                    if side.startswith("cleanrl"):
                        run = run_cleanrl(python, checkout, algorithm, env_id, seed, args.max_seconds, args.max_steps)
                    else:
                        config = our_config(algorithm, env_id, seed, matched=side.endswith("matched"))
                        run = run_ours(config, env_id, args.max_seconds, args.max_steps)
                    runs.append({"side": side, "seed": seed, **run})
                    print(f"{env_id} {side} seed {seed}: {'solved' if run['solved'] else 'NOT solved'} after "
                          f"{run['wall_s_to_target']} s, {run['env_steps_to_target']} env steps "
                          f"({run['env_steps_per_s']}/s); best mean-{WINDOW} return {run['best_mean_return']}",
                          flush=True)
            wanted = 3.0  # CleanRL's wall time to the target over ours, on every seed
            results[f"{env_id}/{algorithm}"] = {
                "env": env_id, "algorithm": algorithm, "target_return": target_return(env_id), "runs": runs,
                "our_envs": our_params(algorithm)["num_envs_per_env_runner"],
                "summary": summarize(runs, sides, cleanrl_side[algorithm], ours, wanted),
                "ran": provenance()}
    cleanrl_runs = [r for result in results.values() for r in result["runs"] if "gymnasium" in r]
    write_result("vs_cleanrl", {
        "cleanrl_checkout": shown_path(checkout), "cleanrl_commit": git_head(checkout), "cleanrl_source": args.source,
        "cleanrl_packages": {k: cleanrl_runs[0][k] for k in ("torch", "gymnasium")} if cleanrl_runs else {},
        "matched_dqn": {k: list(v) if isinstance(v, tuple) else v for k, v in MATCHED_DQN.items()},
        "matched_a2c": {**MATCHED_A2C, **MATCHED_A2C_SAMPLING}, "max_seconds": args.max_seconds,
        "max_steps": args.max_steps, "results": {**earlier_blocks("vs_cleanrl", "results", set(results)), **results}})


def git_head(checkout: Path) -> str | None:
    """The checkout's commit, or None where it is not a git clone."""
    done = subprocess.run(["git", "-C", str(checkout), "rev-parse", "HEAD"], capture_output=True, text=True)
    if done.returncode != 0:
        return None
    return done.stdout.strip() or None


if __name__ == "__main__":
    main()
