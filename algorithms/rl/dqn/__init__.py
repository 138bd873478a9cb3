"""DQN (Mnih et al. 2015) and Double DQN (van Hasselt et al. 2016) on RLlib's new API stack.

`DQNConfig().training(double_q=True)` is Double DQN: the same algorithm, one flag.
"""

from __future__ import annotations

from typing_extensions import Self

from ray.rllib.algorithms.algorithm_config import NotProvided
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.rllib.utils.metrics import ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME

from algorithms.rl.base import SampledAlgorithm, SampledConfig, validate_common
from algorithms.rl.replay import ReplayBuffer
from algorithms.rl.sampling import learn_and_sync, learner_batch

REPLAY_BUFFER = "replay_buffer"


class DQNConfig(SampledConfig):
    """Defaults chosen for wall time to solve CartPole at one torch thread (bench/vs_cleanrl.py). On a CPU a
    gradient step on a small MLP costs about as much at batch 256 as at 64, so 24 steps of 256 per 256 env
    steps (0.09 steps per env step) replay more transitions per env step than the former 8 steps of 64 per 32
    env steps (0.25) at about a third of the gradient-step cost, and pay the per-training-step overhead
    (sampling call, Learner update, weight sync) an eighth as often. Polyak averaging (tau 0.02) kept the
    larger lr (1e-3) from collapsing runs that hard target syncs let collapse."""

    def __init__(self, algo_class=None):
        super().__init__(algo_class=algo_class or DQN)
        self.double_q = False
        self.dueling = False
        self.n_step = 1
        self.td_loss = "huber"
        self.replay_capacity = 50_000
        self.learning_starts = 1_000
        self.rollout_steps = 256
        self.updates_per_rollout = 24
        self.target_update_freq = 500
        self.tau = 0.02
        self.epsilon_start, self.epsilon_end, self.epsilon_timesteps = 1.0, 0.02, 10_000
        self.hidden = [64, 64]
        self.lr = 1e-3
        self.gamma = 0.99
        self.grad_clip = 10.0
        self.train_batch_size_per_learner = 256
        self.metrics_num_episodes_for_smoothing = 20

    def training(self, *, double_q=NotProvided, dueling=NotProvided, n_step=NotProvided, td_loss=NotProvided,
                 replay_capacity=NotProvided, learning_starts=NotProvided, rollout_steps=NotProvided,
                 updates_per_rollout=NotProvided, target_update_freq=NotProvided, tau=NotProvided,
                 epsilon=NotProvided, hidden=NotProvided, **kwargs) -> Self:
        """DQN settings; `epsilon` is (start, end, timesteps) of the linear exploration schedule."""
        super().training(**kwargs)
        for name, value in dict(double_q=double_q, dueling=dueling, n_step=n_step, td_loss=td_loss,
                                replay_capacity=replay_capacity, learning_starts=learning_starts,
                                rollout_steps=rollout_steps, updates_per_rollout=updates_per_rollout,
                                target_update_freq=target_update_freq, tau=tau, hidden=hidden).items():
            if value is not NotProvided:
                setattr(self, name, value)
        if epsilon is not NotProvided:
            self.epsilon_start, self.epsilon_end, self.epsilon_timesteps = epsilon
        return self

    def validate(self) -> None:
        super().validate()
        validate_common(self)
        checks = [(self.n_step >= 1, "n_step must be >= 1"), (0 < self.tau <= 1, "tau must be in (0, 1]"),
                  (self.td_loss in ("huber", "mse"), "td_loss must be huber or mse"),
                  (self.target_update_freq >= 1, "target_update_freq must be >= 1"),
                  (self.replay_capacity >= self.train_batch_size_per_learner,
                   "replay_capacity must hold at least one train batch")]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    def get_default_rl_module_spec(self) -> RLModuleSpec:
        from algorithms.rl.modules import QModule

        return RLModuleSpec(module_class=QModule, model_config={
            "hidden": self.hidden, "dueling": self.dueling, "epsilon_start": self.epsilon_start,
            "epsilon_end": self.epsilon_end, "epsilon_timesteps": self.epsilon_timesteps})

    def get_default_learner_class(self):
        from algorithms.rl.dqn.learner import DQNLearner

        return DQNLearner


class DQN(SampledAlgorithm):
    @classmethod
    def get_default_config(cls) -> DQNConfig:
        return DQNConfig()

    def setup(self, config) -> None:
        super().setup(config)
        self.replay = ReplayBuffer(self.config.replay_capacity, n_step=self.config.n_step, gamma=self.config.gamma,
                                   seed=self.config.seed or 0, clip_rewards=self.config.clip_rewards)
        self.checkpointed[REPLAY_BUFFER] = self.replay  # a restored DQN continues with the same transitions

    def training_step(self) -> None:
        """Sample a rollout into the replay buffer (n-step windows joined across fragments), then
        `updates_per_rollout` gradient steps on uniform replay batches in one Learner call
        (`DQNLearner._update` takes them one minibatch after the other, each with its target-network
        update), and push the new weights to the EnvRunners.

        Learning starts once `learning_starts` env steps have been sampled, counted as RLlib's
        `num_steps_sampled_before_learning_starts` and CleanRL's `learning_starts` count them. (Counting
        transitions in the buffer never started learning when learning_starts >= replay_capacity: a buffer
        always holds a few observations that start no sampleable transition yet.)"""
        config = self.config
        _, fragments = self.sample(num_timesteps=config.rollout_steps)
        self.replay.add_round(fragments)
        sampled = self.metrics.peek((ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME), default=0)
        if len(self.replay) == 0 or sampled < config.learning_starts:
            return
        batch = self.replay.sample(config.train_batch_size_per_learner * config.updates_per_rollout)
        learn_and_sync(self, batch=learner_batch(batch))
