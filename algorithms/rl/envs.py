"""Environments: gymnasium ids, checked up front, and Atari with the standard DQN preprocessing."""

from __future__ import annotations

import gymnasium as gym

ATARI_PREFIX = "ALE/"


def _register_atari() -> None:
    import ale_py

    gym.register_envs(ale_py)


def is_atari(env_id: str) -> bool:
    return env_id.startswith(ATARI_PREFIX)


def check_env_id(env_id: str) -> str | None:
    """None when gymnasium knows env_id, else a one-line reason."""
    if is_atari(env_id):
        _register_atari()
    try:
        gym.spec(env_id)
    except gym.error.Error as err:
        return f"unknown environment {env_id!r}: {err}"
    return None


def make_atari(env_id: str, frame_stack: int = 4, seed: int | None = None, render_mode: str | None = None) -> gym.Env:
    """Mnih et al. 2015: 84x84 grey, 4-frame skip with max-pooling, 30 no-op starts, 4 stacked frames;
    observations (4, 84, 84) uint8. Rewards stay the game's score, so episode returns are scores; the
    learners clip them (RLlib's `clip_rewards`, which the RL family turns on for Atari)."""
    _register_atari()
    env = gym.make(env_id, frameskip=1, repeat_action_probability=0.0, render_mode=render_mode)
    env = gym.wrappers.AtariPreprocessing(env, noop_max=30, frame_skip=4, screen_size=84, grayscale_obs=True,
                                          scale_obs=False)
    env = gym.wrappers.FrameStackObservation(env, frame_stack)
    if seed is not None:
        env.reset(seed=seed)
    return env


def env_for_rllib(env_id: str) -> str:
    """The name RLlib should build: Atari ids get our preprocessing through a registered creator."""
    if not is_atari(env_id):
        return env_id
    from ray.tune import register_env

    name = f"preprocessed/{env_id}"
    register_env(name, lambda cfg: make_atari(env_id))
    return name
