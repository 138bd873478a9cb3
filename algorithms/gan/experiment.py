"""The GAN family's Experiment: one Tune iteration = N generator steps + FID and mode coverage."""

from __future__ import annotations

from pathlib import Path

import torch

from algorithms.plots import line_plot, save_image_grid
from algorithms.trainer_experiment import TrainerExperiment


class GANExperiment(TrainerExperiment):
    def __init__(self, config: dict):
        from algorithms.gan.trainer import GANTrainer

        super().__init__(config, GANTrainer(config))

    def describe(self) -> dict:
        """The reference points for every score: real data (FID, coverage) and the untrained generator."""
        from algorithms.gan.coverage import mode_scores, predict_classes

        data, gen = self.trainer.data, torch.Generator().manual_seed(self.config["seed"])
        real = data.images[torch.randperm(len(data.images), generator=gen)[:self.config["eval_samples"]]]
        real_modes = mode_scores(predict_classes(self.trainer.scorer.classifier, data.images), data.labels.numpy(),
                                 data.num_classes, seed=self.config["seed"])
        return {"eval/fid_real": self.trainer.scorer.score(real),
                "eval/mode_coverage_real": real_modes["mode_coverage"], "eval/class_kl_real": real_modes["class_kl"],
                **self.trainer.evaluate()}

    def hyperparameters(self) -> dict:
        return {"lr_g": self.trainer.opt_g.param_groups[0]["lr"], "lr_d": self.trainer.opt_d.param_groups[0]["lr"]}

    def apply_hyperparameters(self, values: dict) -> None:
        """PBT: each optimiser's learning rate, in place (run after every restore, which brings back the old)."""
        for key, optimizer in (("lr_g", self.trainer.opt_g), ("lr_d", self.trainer.opt_d)):
            if key in values:
                for group in optimizer.param_groups:
                    group["lr"] = values[key]

    def export_model(self, directory: Path):
        from algorithms.gan.serving import export

        return export(self.trainer, self.config, directory)

    def write_artifacts(self, directory: Path, final: bool) -> None:
        if not final:
            return
        seed = self.config["seed"] + 2
        if self.trainer.conditional:  # one row per class
            classes = self.trainer.data.num_classes
            labels = torch.arange(classes).repeat_interleave(8)
            save_image_grid(self.trainer.generate(len(labels), seed=seed, labels=labels), directory / "samples.png",
                            nrow=8)
        else:
            save_image_grid(self.trainer.generate(64, seed=seed), directory / "samples.png", nrow=8)
        steps = self.curve("train/step")
        line_plot(steps, {"train/d_loss": self.curve("train/d_loss"),
                          "train/g_loss": self.curve("train/g_loss")},
                  directory / "loss_curve.png", xlabel="generator step", title="GAN losses")
        line_plot(steps, {"eval/fid": self.curve("eval/fid")},
                  directory / "fid_curve.png", xlabel="generator step", title="eval/fid (lower is better)")
        line_plot(steps, {"eval/mode_coverage": self.curve("eval/mode_coverage")},
                  directory / "mode_coverage.png", xlabel="generator step",
                  title="share of classes among the samples (1 = every class)")
