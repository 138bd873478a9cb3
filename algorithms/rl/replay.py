"""A uniform experience-replay ring buffer of (n-step) transitions in preallocated numpy arrays.

Storing flat transitions, instead of RLlib's episode buffer plus learner connectors, is what makes
our DQN fast on small environments: a training batch is one fancy-indexing call.
"""

from __future__ import annotations

import numpy as np

FIELDS = ("obs", "actions", "rewards", "next_obs", "discounts", "terminated")


class ReplayBuffer:
    def __init__(self, capacity: int, seed: int = 0):
        self.capacity = capacity
        self.size = 0
        self.position = 0
        self.storage: dict[str, np.ndarray] = {}
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return self.size

    def add(self, transitions: dict[str, np.ndarray]) -> None:
        """Append transitions (a dict of equal-length arrays), overwriting the oldest when full."""
        count = len(transitions["actions"])
        if not self.storage:
            for key in FIELDS:
                value = np.asarray(transitions[key])
                self.storage[key] = np.zeros((self.capacity, *value.shape[1:]), dtype=value.dtype)
        index = (self.position + np.arange(count)) % self.capacity
        for key in FIELDS:
            self.storage[key][index] = transitions[key]
        self.position = (self.position + count) % self.capacity
        self.size = min(self.size + count, self.capacity)

    def sample(self, batch_size: int) -> dict[str, np.ndarray]:
        index = self.rng.integers(0, self.size, batch_size)
        return {key: self.storage[key][index] for key in FIELDS}

    def state(self) -> dict:
        return {"storage": self.storage, "size": self.size, "position": self.position,
                "rng": self.rng.bit_generator.state}

    def load_state(self, state: dict) -> None:
        self.storage, self.size, self.position = state["storage"], state["size"], state["position"]
        self.rng.bit_generator.state = state["rng"]
