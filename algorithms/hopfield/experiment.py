"""The Hopfield family's Experiment: the patterns are stored once; every Tune iteration probes them with fresh
corrupted copies."""

from __future__ import annotations

from pathlib import Path

import torch

from algorithms.plots import line_plot, save_image_grid


class HopfieldExperiment:
    def __init__(self, config: dict):
        from algorithms.hopfield.network import Hopfield

        self.config = config
        self.device = torch.device("cpu")
        self.patterns, self.shape = stored_patterns(config)
        self.network = Hopfield(self.patterns, config["rule"], config["beta"])
        self.iteration = 0
        self.last: dict | None = None

    def step(self) -> dict:
        from algorithms.hopfield.network import recall_scores
        from orchestration.aggregate import wilson_interval

        config = self.config
        self.iteration += 1
        gen = torch.Generator().manual_seed(config["seed"] * 1_000_003 + self.iteration)
        targets, probes, run = self.network.probe(config["probes"], config["flip_fraction"], config["update"],
                                                  config["temperature"], config["max_sweeps"], gen)
        scores = recall_scores(run["states"], targets)
        ci = wilson_interval(scores["recall_accuracy"] * len(targets), len(targets))
        energies = run["energies"].mean(1)
        self.last = {"targets": targets[:16], "probes": probes[:16], "states": run["states"][:16],
                     "energies": energies.tolist()}
        return {**{f"eval/{k}": v for k, v in scores.items()}, "eval/recall_accuracy_ci_low": ci.low,
                "eval/recall_accuracy_ci_high": ci.high, "eval/energy_start": float(energies[0]),
                "eval/energy_end": float(energies[-1]), "eval/sweeps": run["sweeps"]}

    def describe(self) -> dict:
        n = self.patterns.shape[1]
        return {"hopfield/units": n, "hopfield/stored_patterns": len(self.patterns),
                "hopfield/load": len(self.patterns) / n,
                # how alike the stored patterns are: the mean |overlap| between distinct ones (random: ~1/sqrt(N))
                "hopfield/mean_pattern_overlap": mean_pattern_overlap(self.patterns)}

    def save(self, directory: Path) -> None:
        torch.save({"patterns": self.patterns, "iteration": self.iteration}, directory / "hopfield.pt")

    def restore(self, directory: Path) -> None:
        from algorithms.hopfield.network import Hopfield

        state = torch.load(directory / "hopfield.pt", weights_only=False)
        self.patterns, self.iteration = state["patterns"], state["iteration"]
        self.network = Hopfield(self.patterns, self.config["rule"], self.config["beta"])

    def export_model(self, directory: Path):
        from algorithms.hopfield.serving import export

        return export(self.network, self.shape, self.config, directory)

    def write_artifacts(self, directory: Path, final: bool) -> None:
        if not final or self.last is None:
            return
        if self.shape is not None:  # rows: stored, corrupted, recalled
            rows = [self.last[k].view(-1, *self.shape) for k in ("targets", "probes", "states")]
            save_image_grid(torch.cat(rows).clamp(-1, 1), directory / "recall.png", nrow=len(rows[0]))
        energies = self.last["energies"]
        line_plot(list(range(len(energies))), {"mean energy": energies}, directory / "energy.png",
                  xlabel="sweep", title="energy along the recall trajectory")


def stored_patterns(config: dict) -> tuple[torch.Tensor, tuple | None]:
    """(P, N) +-1 patterns, P = round(load * N): binarised images of the data set in a seeded order, or
    random ones of `units` units; and the image shape to draw them with (None when N is not a square)."""
    gen = torch.Generator().manual_seed(config["seed"])
    if config["patterns"] == "random":
        n = config["units"]
        count = max(1, round(config["load"] * n))
        side = round(n ** 0.5)
        return torch.randint(0, 2, (count, n), generator=gen).float() * 2 - 1, ((1, side, side) if side * side == n
                                                                                  else None)
    from algorithms.data import dataset_from_config

    data = dataset_from_config(config)
    images = torch.where(data.images.flatten(1) > 0, 1.0, -1.0)
    count = max(1, round(config["load"] * images.shape[1]))
    if count > len(images):
        raise ValueError(f"load {config['load']} asks for {count} patterns; the data set has {len(images)}")
    return images[torch.randperm(len(images), generator=gen)[:count]], data.shape


def mean_pattern_overlap(patterns: torch.Tensor) -> float:
    if len(patterns) < 2:
        return 0.0
    overlaps = (patterns @ patterns.T / patterns.shape[1]).abs()
    return float((overlaps.sum() - overlaps.diagonal().sum()) / (len(patterns) * (len(patterns) - 1)))
