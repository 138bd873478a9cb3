"""The diffusion family's Experiment: one Tune iteration = N training steps + an FID evaluation."""

from __future__ import annotations

import math
from pathlib import Path

import torch

from algorithms.plots import line_plot, save_image_grid
from algorithms.trainer_experiment import TrainerExperiment


class DiffusionExperiment(TrainerExperiment):
    def __init__(self, config: dict):
        from algorithms.diffusion.trainer import DiffusionTrainer

        super().__init__(config, DiffusionTrainer(config))

    def describe(self) -> dict:
        """Schedule facts and the two reference points for eval/fid: real data and the untrained model."""
        alpha_bar_T = self.trainer.diffusion.alpha_bar_final
        n = self.config["eval_samples"]
        gen = torch.Generator().manual_seed(self.config["seed"])
        real = self.trainer.data.images[torch.randperm(len(self.trainer.data.images), generator=gen)[:n]]
        return {"schedule/alpha_bar_T": alpha_bar_T,
                "schedule/log10_alpha_bar_T": math.log10(max(alpha_bar_T, 1e-300)),
                "eval/fid_real": self.trainer.scorer.score(real),
                **self.trainer.evaluate()}

    def hyperparameters(self) -> dict:
        return {"lr": self.trainer.optimizer.param_groups[0]["lr"], "ema_decay": self.trainer.ema.decay,
                "grad_clip": self.config["grad_clip"]}

    def apply_hyperparameters(self, values: dict) -> None:
        """PBT: the optimiser's lr, the EMA decay and the clipping norm, in place (a restored checkpoint
        brings back the lr and decay it was saved with, so this runs after every restore)."""
        if "lr" in values:
            for group in self.trainer.optimizer.param_groups:
                group["lr"] = values["lr"]
        if "ema_decay" in values:
            self.trainer.ema.decay = values["ema_decay"]
        if "grad_clip" in values:
            self.config["grad_clip"] = values["grad_clip"]

    def export_model(self, directory: Path):
        from algorithms.diffusion.serving import export

        return export(self.trainer, self.config, directory)

    def write_artifacts(self, directory: Path, final: bool) -> None:
        if not final:
            self._forward_process(directory / "forward_process.png")
            return
        save_image_grid(self.trainer.generate(64, seed=self.config["seed"] + 2), directory / "samples.png", nrow=8)
        steps = self.curve("train/step")
        line_plot(steps, {"train/loss": self.curve("train/loss")},
                  directory / "loss_curve.png", xlabel="training step", title="training loss")
        line_plot(steps, {"eval/fid": self.curve("eval/fid")},
                  directory / "fid_curve.png", xlabel="training step", title="eval/fid (lower is better)")

    def _forward_process(self, path: Path) -> None:
        """Rows: 8 data images; columns: x_t at 8 evenly spaced t from 0 to T-1."""
        diffusion, x0 = self.trainer.diffusion, self.trainer.data.images[:8].to(self.trainer.device)
        gen = torch.Generator(device=self.trainer.device).manual_seed(0)
        noise = torch.randn(x0.shape, generator=gen, device=self.trainer.device)
        ts = torch.linspace(0, diffusion.timesteps - 1, 8).round().long().to(self.trainer.device)
        columns = [diffusion.q_sample(x0, t.repeat(len(x0)), noise) for t in ts]
        grid = torch.stack(columns, dim=1).flatten(0, 1)  # row-major: image i, time j
        save_image_grid(grid.clamp(-1, 1).cpu(), path, nrow=8)
