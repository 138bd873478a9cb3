"""The Experiment shape the trainer-based families share (diffusion, GAN, RBM): a trainer with
`train(n) -> metrics`, `evaluate() -> metrics`, `save(path)` and `load(path)`, and the metric history that the
final curves are drawn from. A family's Experiment subclasses it and adds what is its own (describe,
artifacts, model export, live hyperparameters)."""

from __future__ import annotations

from pathlib import Path

import torch


class TrainerExperiment:
    budget_key = "steps_per_iteration"  # the config key: how much one Tune iteration trains

    def __init__(self, config: dict, trainer):
        self.config = config
        self.trainer = trainer
        self.history: list[dict] = []

    @property
    def device(self) -> torch.device:
        return self.trainer.device

    def step(self) -> dict:
        metrics = self.trainer.train(self.config[self.budget_key])
        metrics.update(self.trainer.evaluate())
        self.history.append(metrics)
        return metrics

    def save(self, directory: Path) -> None:
        self.trainer.save(directory / "trainer.pt")
        torch.save(self.history, directory / "history.pt")

    def restore(self, directory: Path) -> None:
        self.trainer.load(directory / "trainer.pt")
        self.history = torch.load(directory / "history.pt", weights_only=False)

    def curve(self, key: str) -> list:
        return [h[key] for h in self.history]
