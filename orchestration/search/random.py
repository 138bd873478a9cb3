"""`method: random`: `num_samples` trials, each drawing every swept parameter (a listed value or from its
distribution); with `seeds`, `num_samples` configurations drawn once, each run with every seed."""

from __future__ import annotations

from orchestration.search.base import Method


class RandomSearch(Method):
    name = "random"


METHOD = RandomSearch()
