"""The RBM family's Experiment: a few epochs per Tune iteration, then the held-out scores."""

from __future__ import annotations

from pathlib import Path


from algorithms.plots import line_plot, save_image_grid
from algorithms.trainer_experiment import TrainerExperiment


class RBMExperiment(TrainerExperiment):
    budget_key = "epochs_per_iteration"

    def __init__(self, config: dict):
        from algorithms.rbm.trainer import RBMTrainer

        super().__init__(config, RBMTrainer(config))

    def describe(self) -> dict:
        """The untrained RBM's scores, as the reference every trained one must beat."""
        return {"rbm/visible": self.trainer.rbm.visible, **self.trainer.evaluate()}

    def hyperparameters(self) -> dict:
        return {"lr": self.config["lr"], "momentum": self.config["momentum"]}

    def apply_hyperparameters(self, values: dict) -> None:
        """PBT: the learning rate and momentum are read from the config at every step."""
        self.config.update({k: v for k, v in values.items() if k in ("lr", "momentum")})

    def export_model(self, directory: Path):
        from algorithms.rbm.serving import export

        return export(self.trainer, self.config, directory)

    def write_artifacts(self, directory: Path, final: bool) -> None:
        if not final:
            return
        samples = self.trainer.sample(64, self.config["sample_steps"], seed=self.config["seed"] + 2)
        save_image_grid(samples, directory / "samples.png", nrow=8)
        save_image_grid(self.trainer.rbm.W.T[:64].reshape(-1, *self.trainer.data.shape).cpu().tanh(),
                        directory / "filters.png", nrow=8)
        epochs = self.curve("train/epoch")
        line_plot(epochs, {"eval/pseudo_log_likelihood": self.curve("eval/pseudo_log_likelihood"),
                           "eval/log_likelihood (AIS)": self.curve("eval/log_likelihood")},
                  directory / "likelihood_curve.png", xlabel="epoch", title="held-out log-likelihood per image")
