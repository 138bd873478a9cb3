"""Hopfield networks: Hebbian storage of +-1 patterns and recall by energy descent, plus the modern
continuous Hopfield update (Ramsauer et al. 2020).

Classical (Hopfield 1982): W = (1/N) sum_mu xi_mu xi_mu^T with a zero diagonal, energy E(s) = -1/2 s.W.s.
A unit's field is h_i = W_i.s; at T = 0 it takes sign(h_i) (ties keep the state), so asynchronous updates
(one unit at a time) never raise E. At T > 0 it is stochastic, s_i = +1 with p = 1 / (1 + exp(-2 h_i / T))
(the flip saves dE = 2 h_i). Synchronous updates (all units at once) may fall into 2-cycles.
Random patterns are recalled up to about 0.14 N of them (Amit, Gutfreund & Sompolinsky 1985); correlated
ones (digits) much fewer.

Modern (Ramsauer et al.): continuous states, new state = X^T softmax(beta X s) over the stored patterns X,
energy E(s) = -lse(beta, X s) + 1/2 s.s (+ constants); its capacity grows exponentially with N.
"""

from __future__ import annotations

import torch

UPDATES = ("async", "sync")
RULES = ("hebbian", "modern")


class Hopfield:
    def __init__(self, patterns: torch.Tensor, rule: str = "hebbian", beta: float = 8.0):
        """patterns: (P, N) in {-1, +1}."""
        self.patterns, self.rule, self.beta = patterns.float(), rule, beta
        n = patterns.shape[1]
        self.W = self.patterns.T @ self.patterns / n
        self.W.fill_diagonal_(0.0)

    @property
    def units(self) -> int:
        return self.patterns.shape[1]

    def energy(self, s: torch.Tensor) -> torch.Tensor:
        """Per row of s."""
        if self.rule == "modern":
            lse = torch.logsumexp(self.beta * s @ self.patterns.T, dim=-1) / self.beta
            return -lse + 0.5 * (s * s).sum(-1)
        return -0.5 * ((s @ self.W) * s).sum(-1)

    def recall(self, s: torch.Tensor, update: str = "async", temperature: float = 0.0, max_sweeps: int = 50,
               generator: torch.Generator | None = None, trace_updates: bool = False) -> dict:
        """Run from the probes s (B, N) until no unit changes in a sweep (or max_sweeps). Returns the final
        states, the mean energy after each sweep (after each single unit update with trace_updates, async
        only), and the sweeps taken. A stochastic run (T > 0) always takes max_sweeps."""
        generator = generator or torch.Generator().manual_seed(0)
        s = s.float().clone()
        energies = [self.energy(s)]
        sweeps = 0
        for sweeps in range(1, max_sweeps + 1):
            before = s.clone()
            if self.rule == "modern":
                s = torch.softmax(self.beta * s @ self.patterns.T, dim=-1) @ self.patterns
            elif update == "sync":
                s = self._decide(s @ self.W, s, temperature, generator)
            else:
                for i in torch.randperm(self.units, generator=generator).tolist():
                    s[:, i] = self._decide(s @ self.W[:, i], s[:, i], temperature, generator)
                    if trace_updates:
                        energies.append(self.energy(s))
            if not trace_updates:
                energies.append(self.energy(s))
            if temperature == 0 and torch.allclose(s, before, atol=1e-6):
                break
        return {"states": s, "energies": torch.stack(energies), "sweeps": sweeps}

    def probe(self, count: int, flip_fraction: float, update: str, temperature: float, max_sweeps: int,
              generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, dict]:
        """`count` stored patterns (cycling over them), each with `flip_fraction` of its units flipped, run by
        `recall`: (the patterns, the corrupted probes, the run)."""
        targets = self.patterns[torch.arange(count) % len(self.patterns)]
        probes = corrupt(targets, flip_fraction, generator)
        return targets, probes, self.recall(probes, update, temperature, max_sweeps, generator)

    @staticmethod
    def _decide(field: torch.Tensor, current: torch.Tensor, temperature: float, generator) -> torch.Tensor:
        if temperature > 0:
            p_up = torch.sigmoid(2 * field / temperature)
            return torch.where(torch.rand(p_up.shape, generator=generator) < p_up, 1.0, -1.0)
        return torch.where(field > 0, 1.0, torch.where(field < 0, -1.0, current))


def corrupt(patterns: torch.Tensor, fraction: float, generator: torch.Generator) -> torch.Tensor:
    """Each pattern with round(fraction * N) of its units flipped, chosen at random per pattern."""
    n = patterns.shape[1]
    flips = round(fraction * n)
    out = patterns.clone().float()
    for row in range(len(out)):
        idx = torch.randperm(n, generator=generator)[:flips]
        out[row, idx] = -out[row, idx]
    return out


def recall_scores(final: torch.Tensor, targets: torch.Tensor) -> dict:
    """Exact recall (the share of probes that end on their pattern, sign taken) and the mean overlap
    m = s.xi / N (1 is the pattern, 0 unrelated)."""
    signs = torch.where(final >= 0, 1.0, -1.0)
    exact = (signs == targets).all(dim=1).float().mean().item()
    overlap = ((signs * targets).sum(1) / targets.shape[1]).mean().item()
    return {"recall_accuracy": exact, "recall_overlap": overlap}
