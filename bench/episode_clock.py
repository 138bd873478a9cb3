"""One clock for every RL benchmark side: ours, RLlib's and CleanRL's (not a test).

`EpisodeClock` wraps each env a side creates and records every finished training episode of the process
as (time, env steps of all envs so far, return). "Solved" is judged from those records alone, the same
way for every side: the first episode end at which the mean return of the last WINDOW episodes reaches
the env's registered `reward_threshold` (CartPole-v1: 475, Acrobot-v1: -100). Nothing here imports Ray
or the project, so CleanRL's interpreter (its own venv, gymnasium 0.29) runs it too.
"""

from __future__ import annotations

import time
from collections import deque

import gymnasium as gym

WINDOW = 20


def target_return(env_id: str) -> float:
    """The env's registered solved threshold (gymnasium's `reward_threshold`)."""
    threshold = gym.spec(env_id).reward_threshold
    if threshold is None:
        raise SystemExit(f"{env_id} registers no reward_threshold; give the benchmark a target")
    return float(threshold)


class EpisodeClock(gym.Wrapper):
    """Counts every env step and records every finished episode in this process (class-wide state)."""

    episodes: list[tuple[float, int, float]] = []
    steps = 0
    started: float | None = None  # time of the first env step: where every side's wall time starts
    on_episode = None  # optional callback(episodes) after each finished episode

    def __init__(self, env):
        super().__init__(env)
        self.total = 0.0

    @classmethod
    def clear(cls) -> None:
        cls.episodes, cls.steps, cls.started = [], 0, None

    def reset(self, **kwargs):
        self.total = 0.0
        return self.env.reset(**kwargs)

    def step(self, action):
        if EpisodeClock.started is None:
            EpisodeClock.started = time.perf_counter()
        obs, reward, terminated, truncated, info = self.env.step(action)
        EpisodeClock.steps += 1
        self.total += float(reward)
        if terminated or truncated:
            EpisodeClock.episodes.append((time.perf_counter(), EpisodeClock.steps, self.total))
            if EpisodeClock.on_episode is not None:
                EpisodeClock.on_episode(EpisodeClock.episodes)
        return obs, reward, terminated, truncated, info


def first_solved(episodes: list[tuple[float, int, float]], target: float,
                 window: int = WINDOW) -> tuple[float, int] | None:
    """(time, env steps) at the first episode end where the last `window` returns average >= target."""
    recent: deque[float] = deque(maxlen=window)
    for when, steps, ret in episodes:
        recent.append(ret)
        if len(recent) == window and sum(recent) / window >= target:
            return when, steps
    return None


def outcome(target: float, stopped_at: float) -> dict:
    """The run's record: solved or not, and wall time / env steps to the target (to the cap when unsolved,
    so a ratio against an unsolved run is a bound). Wall time counts from the first env step."""
    start = EpisodeClock.started or stopped_at
    solved = first_solved(EpisodeClock.episodes, target)
    wall, steps = stopped_at - start, EpisodeClock.steps
    when, at_steps = solved if solved else (stopped_at, steps)
    return {"solved": solved is not None, "wall_s": round(wall, 2), "env_steps": steps,
            "episodes": len(EpisodeClock.episodes), "wall_s_to_target": round(when - start, 2),
            "env_steps_to_target": at_steps,
            "env_steps_per_s": round(at_steps / max(when - start, 1e-9), 1)}
