"""Deep RL on RLlib's new API stack: our DQN / Double DQN and A2C (REINFORCE with baseline as an option)."""

from __future__ import annotations

from orchestration.family import Family
from orchestration.params import Bool, Choice, Float, Int, IntList, Text

ALGORITHMS = ("dqn", "double_dqn", "a2c", "reinforce")

PARAMS = {
    "algorithm": Choice("dqn", "dqn, double_dqn, a2c or reinforce (A2C on whole episodes, lambda 1)",
                        choices=ALGORITHMS),
    "env": Text("CartPole-v1", "gymnasium id, e.g. CartPole-v1, Acrobot-v1, ALE/Pong-v5"),
    "lr": Float(1e-3, low=0, low_open=True, high=1.0),
    "gamma": Float(0.99, low=0.0, high=1.0),
    "grad_clip": Float(10.0, low=0, low_open=True),
    "hidden": IntList([64, 64], "MLP layer sizes (Atari uses the Nature CNN)", low=1),
    "num_env_runners": Int(0, "remote EnvRunner actors (0: sample in the trial's own process)", low=0),
    "num_envs_per_env_runner": Int(16, "vectorised envs per EnvRunner (16: bench/rl_defaults.py)", low=1),
    "iterations": Int(20, "Tune iterations", low=1),
    "env_steps_per_iteration": Int(2000, "env steps sampled per Tune iteration", low=1),
    "episode_return_window": Int(20, "episode_return_mean: mean return of the last N training episodes", low=1),
    "evaluation_interval": Int(1, "greedy evaluation at the first, every K-th and the last iteration", low=1),
    "evaluation_episodes": Int(10, "greedy episodes per evaluation (a 95% CI from 5 on)", low=1),
    "evaluation_epsilon": Float(0.0, "chance of a random action in evaluation (Atari: 0.05)", low=0, high=1),
    # DQN / Double DQN
    "n_step": Int(1, "DQN n-step returns (3 fails to hold on more seeds: bench/rl_defaults.py)", low=1),
    "dueling": Bool(False, "DQN dueling head"),
    "td_loss": Choice("huber", choices=("huber", "mse")),
    "replay_capacity": Int(50_000, low=1),
    "learning_starts": Int(1_000, "env steps sampled before learning", low=0),
    "rollout_steps": Int(256, "env steps per DQN training step", low=1),
    "updates_per_rollout": Int(24, "gradient steps per DQN training step", low=1),
    "train_batch_size": Int(256, "DQN replay minibatch", low=1),
    "target_update_freq": Int(500, "gradient steps between hard target syncs", low=1),
    "tau": Float(0.02, "Polyak coefficient per gradient step (1: hard sync every target_update_freq steps)",
                 low=0, low_open=True, high=1.0),
    "epsilon_start": Float(1.0, low=0.0, high=1.0),
    "epsilon_end": Float(0.02, low=0.0, high=1.0),
    "epsilon_timesteps": Int(10_000, "env steps of linear epsilon decay", low=0),
    # A2C / REINFORCE
    "rollout_fragment_length": Int(8, "A2C steps per env per update (n of n-step)", low=1),
    "gae_lambda": Float(0.95, "GAE lambda (1: n-step returns)", low=0.0, high=1.0),
    "vf_coeff": Float(0.5, low=0.0),
    "entropy_coeff": Float(0.01, low=0.0),
    "shared_trunk": Bool(False, "policy and value share the trunk"),
    "normalize_advantages": Bool(False),
    "episodes_per_batch": Int(16, "REINFORCE: whole episodes per update, one from every env per round (a multiple "
                              "of num_env_runners x num_envs_per_env_runner)", low=1),
    "seed": Int(0, low=0),
}


def episodes_per_batch_problem(episodes: int, runners: int, envs_per_runner: int) -> str | None:
    """Why a REINFORCE batch of `episodes` cannot be whole rounds of one episode from every env, if it
    cannot (the local EnvRunner samples when there are no remote ones)."""
    envs = max(1, runners) * envs_per_runner
    if episodes % envs == 0:
        return None
    return (f"episodes_per_batch ({episodes}) must be a multiple of the number of envs ({max(1, runners)} "
            f"EnvRunner(s) x {envs_per_runner} envs): a REINFORCE batch is one whole episode from every env per "
            "round, so that long episodes count as often as short ones")


def check_config(config: dict) -> str | None:
    from algorithms.rl.envs import check_env_id

    if config["epsilon_end"] > config["epsilon_start"]:
        return "epsilon_end must not exceed epsilon_start"
    if config["algorithm"] == "reinforce":
        problem = episodes_per_batch_problem(config["episodes_per_batch"], config["num_env_runners"],
                                             config["num_envs_per_env_runner"])
        if problem:
            return problem
    return check_env_id(config["env"])


def extra_bundles(config: dict) -> list[dict]:
    """One CPU per remote EnvRunner, in the trial's placement group."""
    return [{"CPU": 1}] * int(config["num_env_runners"])


def smoke_limits(spare_cpus: float) -> dict:
    """--smoke keeps remote EnvRunners (the wiring under test) but only as many as the machine holds."""
    return {"num_env_runners": max(0, int(spare_cpus))}


FAMILY = Family(
    name="rl",
    experiment="algorithms.rl.experiment:RLExperiment",
    params=PARAMS,
    metrics=("eval/episode_return_mean", "eval/episode_return_auc", "episode_return_mean", "env_steps",
             "train/env_steps_per_s"),
    default_metric="eval/episode_return_mean",
    default_mode="max",
    smoke={"iterations": 2, "env_steps_per_iteration": 200, "learning_starts": 100, "replay_capacity": 1000,
           "evaluation_episodes": 2},
    gpu_fraction=0.5,
    check_config=check_config,
    extra_bundles=extra_bundles,
    smoke_limits=smoke_limits,
    use="algorithms.rl.serving:use",
    mutable=("lr", "entropy_coeff", "tau", "target_update_freq", "epsilon_end"),
    # the area under the return curve depends on the budget it spans and how often it is sampled
    measured_with={"eval/episode_return_auc": ("iterations", "env_steps_per_iteration", "evaluation_interval")},
)
