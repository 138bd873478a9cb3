"""Uniform experience replay of n-step transitions, built from RLlib's episode fragments.

Every observation is stored once. Each env step's observation takes one slot of a ring buffer,
and the transition that starts there points at the slot of its n-th next observation. The
observation after an episode's last step gets a slot of its own that is never sampled. So an
Atari frame stack is stored once, not as both `obs` and `next_obs`. A slot is overwritten only
after every slot written before it, and a transition's next observation is always written after
its own, so a transition that is still stored always has its next observation too.

RLlib hands an episode over in fragments, one per `sample()` call, under a stable episode id. The
buffer joins them: the last n-1 steps of a fragment wait for the next fragment of the same
episode, so every transition gets its full n-step window unless the episode ended first. An
episode with no fragment in a round (its EnvRunner was restarted, or the buffer was restored from
a checkpoint) counts as cut: its waiting steps bootstrap from shorter windows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from algorithms.rl.targets import clip_rewards, n_step_returns


@dataclass
class Fragment:
    """One `sample()` call's piece of one episode, as plain arrays."""

    episode_id: str
    observations: np.ndarray  # one more entry than actions: the observation after the last step
    actions: np.ndarray
    rewards: np.ndarray
    terminated: bool
    truncated: bool

    @property
    def done(self) -> bool:
        return self.terminated or self.truncated


@dataclass
class _Waiting:
    """Steps of an unfinished episode whose n-step windows are not complete yet."""

    ids: np.ndarray  # observation ids of the waiting steps, then of the latest observation
    actions: np.ndarray
    rewards: np.ndarray


class ReplayBuffer:
    def __init__(self, capacity: int, n_step: int = 1, gamma: float = 0.99, seed: int = 0,
                 clip_rewards: bool | float | None = None):
        self.capacity, self.n_step, self.gamma, self.clip_rewards = capacity, n_step, gamma, clip_rewards
        self.written = 0  # observations ever written: observation id i lives in slot i % capacity
        self.count = 0  # sampleable transitions
        self.obs: np.ndarray | None = None
        self.actions = np.zeros(capacity, dtype=np.int64)
        self.rewards = np.zeros(capacity, dtype=np.float32)
        self.discounts = np.zeros(capacity, dtype=np.float32)
        self.terminated = np.zeros(capacity, dtype=np.float32)
        self.next_id = np.zeros(capacity, dtype=np.int64)
        self.valid = np.zeros(capacity, dtype=bool)
        self.waiting: dict[str, _Waiting] = {}
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return self.count

    def add_round(self, fragments: list[Fragment]) -> None:
        """Store one round of fragments (one `sample()` call on every EnvRunner)."""
        seen = set()
        for fragment in fragments:
            self._add(fragment)
            seen.add(fragment.episode_id)
        for episode_id in [e for e in self.waiting if e not in seen]:
            self._cut(episode_id)

    def sample(self, batch_size: int) -> dict[str, np.ndarray]:
        if self.count == 0:
            raise ValueError("the replay buffer holds no complete transition yet")
        size = min(self.written, self.capacity)
        index = self.rng.integers(0, size, batch_size)
        invalid = ~self.valid[index]
        while invalid.any():  # uniform over the stored transitions: redraw final observations
            index[invalid] = self.rng.integers(0, size, int(invalid.sum()))
            invalid = ~self.valid[index]
        return {"obs": self.obs[index], "actions": self.actions[index], "rewards": self.rewards[index],
                "next_obs": self.obs[self.next_id[index] % self.capacity], "discounts": self.discounts[index],
                "terminated": self.terminated[index]}

    def _add(self, fragment: Fragment) -> None:
        rewards = clip_rewards(np.asarray(fragment.rewards, dtype=np.float32), self.clip_rewards)
        waiting = self.waiting.pop(fragment.episode_id, None)
        if waiting is None:
            ids, actions = self._write(fragment.observations), np.asarray(fragment.actions)
        else:  # the fragment's first observation is the waiting episode's latest one
            ids = np.concatenate([waiting.ids, self._write(fragment.observations[1:])])
            actions = np.concatenate([waiting.actions, fragment.actions])
            rewards = np.concatenate([waiting.rewards, rewards])
        self._complete(ids, actions, rewards, ended=fragment.done, terminated=fragment.terminated)
        if not fragment.done:
            ready = max(0, len(actions) - self.n_step + 1)
            self.waiting[fragment.episode_id] = _Waiting(ids[ready:], actions[ready:], rewards[ready:])

    def _cut(self, episode_id: str) -> None:
        waiting = self.waiting.pop(episode_id)
        self._complete(waiting.ids, waiting.actions, waiting.rewards, ended=True, terminated=False)

    def _write(self, observations: np.ndarray) -> np.ndarray:
        """Store observations in the next slots; returns their ids."""
        observations = np.asarray(observations)
        if self.obs is None:
            self.obs = np.zeros((self.capacity, *observations.shape[1:]), dtype=observations.dtype)
        ids = self.written + np.arange(len(observations))
        slots = ids % self.capacity
        self.count -= int(self.valid[slots].sum())  # transitions in overwritten slots are gone
        self.valid[slots] = False
        self.obs[slots] = observations
        self.written += len(observations)
        return ids

    def _complete(self, ids: np.ndarray, actions: np.ndarray, rewards: np.ndarray, ended: bool,
                  terminated: bool) -> None:
        """Turn the steps whose n-step window is known into transitions: all of them when the
        episode `ended` here, else those with n rewards ahead. `terminated`: no bootstrap after
        the last step."""
        length = len(actions)
        ready = length if ended else max(0, length - self.n_step + 1)
        if ready == 0:
            return
        returns, windows = n_step_returns(rewards, self.n_step, self.gamma, ready)
        t = np.arange(ready)
        keep = ids[:ready] >= self.written - self.capacity  # not overwritten while waiting
        slots = ids[:ready][keep] % self.capacity
        self.actions[slots] = actions[:ready][keep]
        self.rewards[slots] = returns[keep]
        self.discounts[slots] = (self.gamma ** windows[keep]).astype(np.float32)
        self.terminated[slots] = float(terminated) * (t + windows == length)[keep]
        self.next_id[slots] = ids[t + windows][keep]
        self.valid[slots] = True
        self.count += int(keep.sum())

    def state(self) -> dict:
        """Everything needed to continue, including steps still waiting for their window."""
        size = min(self.written, self.capacity)
        arrays = {name: getattr(self, name)[:size] for name in
                  ("actions", "rewards", "discounts", "terminated", "next_id", "valid")}
        return {"obs": None if self.obs is None else self.obs[:size], **arrays, "capacity": self.capacity,
                "written": self.written,
                "count": self.count, "waiting": self.waiting, "rng": self.rng.bit_generator.state}

    def load_state(self, state: dict) -> None:
        """Restore a `state()`. Its waiting episodes will not continue (the EnvRunners that
        sampled them are gone), so they are cut: their last steps bootstrap from shorter windows."""
        if state["capacity"] != self.capacity:
            raise ValueError(f"a replay buffer of capacity {state['capacity']} cannot be restored into one of "
                             f"{self.capacity}")
        size = min(state["written"], self.capacity)
        if state["obs"] is not None:
            self.obs = np.zeros((self.capacity, *state["obs"].shape[1:]), dtype=state["obs"].dtype)
            self.obs[:size] = state["obs"]
        for name in ("actions", "rewards", "discounts", "terminated", "next_id", "valid"):
            getattr(self, name)[:size] = state[name]
        self.written, self.count = state["written"], state["count"]
        self.waiting = dict(state["waiting"])
        self.rng.bit_generator.state = state["rng"]
        for episode_id in list(self.waiting):
            self._cut(episode_id)
