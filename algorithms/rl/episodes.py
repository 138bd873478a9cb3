"""Training episodes counted by the algorithm itself: each episode's return summed over its
fragments, and the mean over the last N episodes that finished on any EnvRunner.

RLlib 2.60's `env_runners/episode_return_mean` is not such a window: every EnvRunner reduces (and
clears) its episode stats at each `get_metrics()` call, and the Algorithm averages those per-call
means over the iteration, so it is a mean of means of the episodes that ended in this iteration,
NaN when none did.
"""

from __future__ import annotations

import math
from collections import deque

from algorithms.rl.replay import Fragment


class EpisodeWindow:
    """Episodes enter the window in the order their last fragment arrives: round by round, and
    within a round in the order of the fragments (EnvRunner by EnvRunner, as they finished)."""

    def __init__(self, size: int):
        self.size = size
        self.finished: deque[tuple[float, int]] = deque(maxlen=size)  # (return, length)
        self.running: dict[str, tuple[float, int]] = {}
        self.completed = 0

    def add_round(self, fragments: list[Fragment]) -> list[tuple[float, int]]:
        """Count one round of fragments; returns the episodes that finished in it."""
        seen, finished = set(), []
        for fragment in fragments:
            ret, length = self.running.pop(fragment.episode_id, (0.0, 0))
            ret, length = ret + float(fragment.rewards.sum()), length + len(fragment.actions)
            if fragment.done:
                finished.append((ret, length))
            else:
                self.running[fragment.episode_id] = (ret, length)
                seen.add(fragment.episode_id)
        for episode_id in [e for e in self.running if e not in seen]:  # its EnvRunner was restarted
            del self.running[episode_id]
        self.finished.extend(finished)
        self.completed += len(finished)
        return finished

    def metrics(self) -> dict[str, float]:
        returns = [r for r, _ in self.finished]
        return {"episode_return_mean": sum(returns) / len(returns) if returns else math.nan,
                "episode_len_mean": sum(n for _, n in self.finished) / len(returns) if returns else math.nan,
                "episodes_in_window": len(returns), "num_episodes_lifetime": self.completed}

    def state(self) -> dict:
        return {"finished": list(self.finished), "completed": self.completed}

    def load_state(self, state: dict) -> None:
        """Episodes that were running at the checkpoint will not finish: only finished ones return."""
        self.finished = deque(state["finished"], maxlen=self.size)
        self.completed = state["completed"]
        self.running = {}
