"""One clock for every RL benchmark side: ours, RLlib's and CleanRL's (not a test).

`EpisodeClock` wraps each env a side creates and records every finished training episode of the process
as (time, env steps of all envs so far, return). "Solved" is judged from those records alone, the same
way for every side: the first episode end at which the mean return of the last WINDOW episodes reaches
the env's registered `reward_threshold` (CartPole-v1: 475, Acrobot-v1: -100), and the first such crossing
that holds (the next WINDOW episodes average at least the threshold too). Nothing here imports Ray
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


def held_crossing(episodes: list[tuple[float, int, float]], target: float,
                  window: int = WINDOW) -> tuple[float, int] | None:
    """(time, env steps) at the first crossing that holds: an episode end where the last `window` returns
    average >= target and so do the next `window` returns. A crossing that falls back does not count."""
    returns = [ret for _, _, ret in episodes]
    for end in range(window - 1, len(returns) - window):
        if (sum(returns[end - window + 1:end + 1]) / window >= target
                and sum(returns[end + 1:end + 1 + window]) / window >= target):
            return episodes[end][0], episodes[end][1]
    return None


def just_held(episodes: list[tuple[float, int, float]], target: float, window: int = WINDOW) -> bool:
    """Whether the latest episode confirms a crossing that holds (the one `window` episodes back): checked
    after every episode, it is first true `window` episodes after the first crossing that holds."""
    return len(episodes) >= 2 * window and held_crossing(episodes[-2 * window:], target, window) is not None


def windowed_returns(episodes: list[tuple[float, int, float]], window: int = WINDOW) -> tuple[float, float] | None:
    """(best, last) mean return over `window` consecutive episodes: what an unsolved run reached."""
    returns = [ret for _, _, ret in episodes]
    if len(returns) < window:
        return None
    means = [sum(returns[end - window:end]) / window for end in range(window, len(returns) + 1)]
    return max(means), means[-1]


def outcome(target: float, stopped_at: float) -> dict:
    """The run's record: solved or not, and wall time / env steps to the target (to the cap when unsolved,
    so a ratio against an unsolved run is a bound). Wall time counts from the first env step."""
    start = EpisodeClock.started or stopped_at
    solved = first_solved(EpisodeClock.episodes, target)
    wall, steps = stopped_at - start, EpisodeClock.steps
    when, at_steps = solved if solved else (stopped_at, steps)
    held = held_crossing(EpisodeClock.episodes, target)
    held_when, held_steps = held if held else (stopped_at, steps)
    windowed = windowed_returns(EpisodeClock.episodes)
    windowed = tuple(round(value, 2) for value in windowed) if windowed else None
    return {"solved": solved is not None, "wall_s": round(wall, 2), "env_steps": steps,
            "episodes": len(EpisodeClock.episodes), "wall_s_to_target": round(when - start, 2),
            "env_steps_to_target": at_steps,
            "env_steps_per_s": round(at_steps / max(when - start, 1e-9), 1),
            # the first crossing may fall back: the time to one that holds for the next WINDOW episodes
            "held": held is not None, "first_crossing_held": held is not None and held == solved,
            "wall_s_to_held": round(held_when - start, 2), "env_steps_to_held": held_steps,
            # what a run reached, solved or not (for an env where neither side reaches the threshold)
            "best_mean_return": windowed[0] if windowed else None,
            "last_mean_return": windowed[1] if windowed else None}
