"""`method: grid`: every combination of the listed values, `num_samples` times over (or, with `seeds`,
every combination with every seed); distributions are drawn once per trial."""

from __future__ import annotations

from orchestration.search.base import Method


class Grid(Method):
    name = "grid"
    crosses_values = True

    def replicates_refusal(self, num_samples: int, seeds: int | None) -> str | None:
        if seeds and num_samples > 1:
            return "with seeds, a grid's num_samples would repeat identical trials; replicates come from seeds"
        return None


METHOD = Grid()
