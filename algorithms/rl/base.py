"""What our DQN and A2C share on top of RLlib's Algorithm: training episodes counted from the
fragments the algorithm samples, and greedy evaluation on envs of its own.

Results of `train()`:
- `training_episodes/episode_return_mean`: the mean return of the last
  `metrics_num_episodes_for_smoothing` training episodes that finished on any EnvRunner (with
  `episode_len_mean`, `episodes_in_window` and `num_episodes_lifetime`). RLlib's own
  `env_runners/episode_return_mean` stays as RLlib computes it (see `algorithms.rl.episodes`).
- `evaluation/...` every `evaluation_interval` iterations (RLlib's setting): `evaluation_duration`
  greedy episodes, their mean return with its spread (`algorithms.rl.evaluation`).
"""

from __future__ import annotations

from ray.rllib.algorithms import Algorithm
from ray.rllib.algorithms.algorithm_config import AlgorithmConfig, NotProvided
from ray.rllib.env.env_context import EnvContext

from algorithms.rl.episodes import EpisodeWindow
from algorithms.rl.evaluation import greedy_episodes, summarize
from algorithms.rl.sampling import sample_first_episodes, sample_fragments, to_fragment

TRAINING_EPISODES = "training_episodes"
EVAL_SEED_OFFSET = 1_000_000  # evaluation envs never share a seed with training envs


class SampledConfig(AlgorithmConfig):
    """Settings both of our algorithms read, beyond RLlib's."""

    def __init__(self, algo_class=None):
        from algorithms.rl import connectors

        super().__init__(algo_class=algo_class)
        self.evaluation_epsilon = 0.0
        # the EnvRunners' lean pipelines (algorithms.rl.connectors) instead of RLlib's general ones
        self.env_runners(env_to_module_connector=connectors.env_to_module,
                         module_to_env_connector=connectors.module_to_env,
                         add_default_connectors_to_env_to_module_pipeline=False,
                         add_default_connectors_to_module_to_env_pipeline=False)

    def evaluation(self, *, evaluation_epsilon=NotProvided, **kwargs):
        """`evaluation_epsilon`: the chance of a random action during evaluation. 0 is greedy; Atari
        is usually scored at 0.05 (Mnih et al. 2015), which also ends games such as Breakout that a
        greedy policy never restarts (it must press FIRE)."""
        super().evaluation(**kwargs)
        if evaluation_epsilon is not NotProvided:
            self.evaluation_epsilon = evaluation_epsilon
        return self


def validate_common(config: AlgorithmConfig) -> None:
    """Settings both of our algorithms read."""
    if not 0 <= config.evaluation_epsilon <= 1:
        raise ValueError("evaluation_epsilon must be in [0, 1]")
    if config.metrics_num_episodes_for_smoothing < 1:
        raise ValueError("metrics_num_episodes_for_smoothing (the training-return window) must be >= 1")
    if config.evaluation_interval and (config.evaluation_duration_unit != "episodes"
                                       or not isinstance(config.evaluation_duration, int)
                                       or config.evaluation_duration < 1):
        raise ValueError("greedy evaluation runs a whole number of episodes: evaluation_duration_unit='episodes' "
                         "and evaluation_duration >= 1")


class SampledAlgorithm(Algorithm):
    @classmethod
    def _should_create_evaluation_env_runners(cls, eval_config) -> bool:
        """`evaluate()` below builds its own envs; RLlib's evaluation EnvRunners would sit idle."""
        return False

    def setup(self, config) -> None:
        super().setup(config)
        self.training_episodes = EpisodeWindow(self.config.metrics_num_episodes_for_smoothing)
        self._eval_envs: list | None = None
        # what RLlib's checkpoint does not hold but a restored algorithm needs: {state key: object with
        # state() and load_state()}; subclasses add theirs (DQN: its replay buffer)
        self.checkpointed = {TRAINING_EPISODES: self.training_episodes}

    def sample(self, num_timesteps: int) -> tuple[list, list]:
        """One round of `sample_fragments`, counted into the training-episode window: (RLlib episodes,
        the same as Fragments)."""
        return self._counted(sample_fragments(self, num_timesteps))

    def sample_whole_episodes(self, rounds: int) -> tuple[list, list]:
        """`rounds` complete episodes from every env (`sample_first_episodes`), counted the same way."""
        return self._counted(sample_first_episodes(self, rounds))

    def _counted(self, episodes: list) -> tuple[list, list]:
        fragments = [to_fragment(e) for e in episodes]
        self.training_episodes.add_round(fragments)
        self.metrics.log_dict(self.training_episodes.metrics(), key=TRAINING_EPISODES, reduce="item")
        return episodes, fragments

    def evaluate(self, parallel_train_future=None) -> dict:
        """`evaluation_duration` greedy episodes (epsilon 0, or the most likely action; a random action
        with probability `evaluation_epsilon`), one per env."""
        count = self.config.evaluation_duration if isinstance(self.config.evaluation_duration, int) else 10
        if self._eval_envs is None or len(self._eval_envs) != count:
            self._close_eval_envs()
            self._eval_envs = [self.env_creator(EnvContext(self.config.env_config, worker_index=0))
                               for _ in range(count)]
        base = EVAL_SEED_OFFSET + 1000 * (self.config.seed or 0)
        return summarize(greedy_episodes(self.get_module(), self._eval_envs, [base + i for i in range(count)],
                                         epsilon=self.config.evaluation_epsilon))

    def get_state(self, components=None, *, not_components=None, **kwargs) -> dict:
        """RLlib's state plus everything in `self.checkpointed`."""
        state = super().get_state(components, not_components=not_components, **kwargs)
        state.update({key: holder.state() for key, holder in self.checkpointed.items()})
        return state

    def set_state(self, state: dict) -> None:
        super().set_state(state)
        for key, holder in self.checkpointed.items():
            if key in state:
                holder.load_state(state[key])

    def _close_eval_envs(self) -> None:
        for env in self._eval_envs or []:
            env.close()
        self._eval_envs = None

    def stop(self) -> None:
        self._close_eval_envs()
        super().stop()
