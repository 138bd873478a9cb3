"""The contrastive family's Experiment: one Tune iteration = N self-supervised steps + kNN / probe eval.

The encoder trains on 80% of the data set without labels; kNN and the linear probe fit on those images'
features and labels and score only the other 20%, which the encoder never saw (digits: 359 images).
The split follows the trial's seed (`evaluation.held_out_split`), the same for every configuration at
one seed. Each accuracy comes with a 95% Wilson interval. Baselines (raw pixels, the randomly
initialised encoder) are scored the same way and logged once at step 0.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from algorithms.contrastive.augment import ViewMaker
from algorithms.contrastive.evaluation import embed, evaluate_features, held_out_split
from algorithms.contrastive.methods import build_method
from algorithms.contrastive.networks import build_encoder
from algorithms.data import DeviceImages, load_dataset
from algorithms.device import select_device
from algorithms.plots import embedding_plot, line_plot, save_image_grid
from algorithms.speedups import MixedPrecision, compile_in_place, set_channels_last, to_memory_format


class ContrastiveExperiment:
    def __init__(self, config: dict):
        self.config = config
        self.device = select_device(config["device"])
        torch.manual_seed(config["seed"])
        data = load_dataset(config["dataset"], data_dir=config["data_dir"], folder=config.get("folder"),
                            image_size=config["image_size"], channels=config["channels"])
        self.train_data, self.test_data = held_out_split(data, config["seed"])
        self.num_classes = data.num_classes
        self.images = DeviceImages(self.train_data.images, self.device)
        encoder = build_encoder(config["encoder"], data.shape[0], config["width"], config["feature_dim"])
        generator = torch.Generator().manual_seed(config["seed"])
        self.model = set_channels_last(build_method(config, encoder, generator=generator).to(self.device), config)
        compile_in_place(encoder, config)  # the trained network; momentum copies run eagerly without gradients
        self.precision = MixedPrecision(config["precision"], self.device)
        self.optimizer = torch.optim.AdamW([p for p in self.model.parameters() if p.requires_grad],
                                           lr=config["lr"], weight_decay=config["weight_decay"])
        strength = "strong" if config["method"] == "moco_v2" or config["augmentation"] == "strong" else "weak"
        self.views = ViewMaker(data.shape, strength)
        self.total_steps = config["iterations"] * config["steps_per_iteration"]
        self.step_count = 0
        self.history: list[dict] = []

    def _features(self):
        encoder = self.model.encoder
        return (embed(encoder, self.train_data.images, self.device), embed(encoder, self.test_data.images, self.device))

    def evaluate(self) -> dict:
        train_x, test_x = self._features()
        scores = evaluate_features(train_x, self.train_data.labels, test_x, self.test_data.labels,
                                   self.num_classes, self.config["knn_k"])
        return {f"eval/{k}": v for k, v in scores.items()}

    def train(self, steps: int) -> dict:
        """`steps` optimizer steps; the mean loss, the embedding spread and the training throughput."""
        self.model.train()
        batch, total, spread, start = self.config["batch_size"], 0.0, 0.0, time.perf_counter()
        for _ in range(steps):
            idx = torch.randint(0, len(self.images), (batch,), device=self.device)
            x1, x2 = (to_memory_format(x, self.config) for x in self.views(self.images.batch(idx)))
            with self.precision.autocast():
                loss = self.model.loss(x1, x2)
            self.optimizer.zero_grad(set_to_none=True)
            self.precision.backward_and_step(loss, self.optimizer)
            self.step_count += 1
            self.model.after_step(self.step_count, self.total_steps)
            total += loss.item()
            spread += torch.nn.functional.normalize(self.model.last_z.float(), dim=1).std(0).mean().item()
        metrics = {"train/loss": total / steps, "train/images_per_s": steps * batch / (time.perf_counter() - start),
                   # std of the normalised embedding per dimension: ~1/sqrt(d) when spread, 0 when collapsed
                   "train/embedding_std": spread / steps, "train/step": self.step_count}
        if hasattr(self.model, "tau"):
            metrics["train/tau"] = self.model.tau
        return metrics

    def step(self) -> dict:
        metrics = self.train(self.config["steps_per_iteration"])
        metrics.update(self.evaluate())
        self.history.append(metrics)
        return metrics

    def describe(self) -> dict:
        """Baselines on the same split: raw pixels and this (still untrained) random encoder."""
        flat = lambda d: d.images.flatten(1)  # noqa: E731
        pixels = evaluate_features(flat(self.train_data), self.train_data.labels, flat(self.test_data),
                                   self.test_data.labels, self.num_classes, self.config["knn_k"])
        random_encoder = self.evaluate()
        return {"baseline/knn_acc_pixels": pixels["knn_acc"], "baseline/linear_acc_pixels": pixels["linear_acc"],
                "baseline/knn_acc_random_encoder": random_encoder["eval/knn_acc"],
                "baseline/linear_acc_random_encoder": random_encoder["eval/linear_acc"], **random_encoder}

    def save(self, directory: Path) -> None:
        torch.save({"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                    "step": self.step_count, "history": self.history, "rng": torch.get_rng_state(),
                    "scaler": self.precision.state_dict()},
                   directory / "contrastive.pt")

    def restore(self, directory: Path) -> None:
        state = torch.load(directory / "contrastive.pt", map_location=self.device, weights_only=False)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step_count, self.history = state["step"], state["history"]
        self.precision.load_state_dict(state.get("scaler", {}))
        torch.set_rng_state(state["rng"].cpu())  # map_location moved it with everything else

    def hyperparameters(self) -> dict:
        group = self.optimizer.param_groups[0]
        out = {"lr": group["lr"], "weight_decay": group["weight_decay"]}
        if hasattr(self.model, "temperature"):
            out["temperature"] = self.model.temperature
        if hasattr(self.model, "momentum"):  # MoCo's m
            out["momentum"] = self.model.momentum
        if hasattr(self.model, "tau_base"):  # BYOL's base tau
            out["momentum"] = self.model.tau_base
        return out

    def apply_hyperparameters(self, values: dict) -> None:
        """PBT: lr and weight decay in the optimiser, the loss temperature and MoCo's m / BYOL's base
        tau in the method, in place; keys a method does not use are ignored."""
        for group in self.optimizer.param_groups:
            group["lr"] = values.get("lr", group["lr"])
            group["weight_decay"] = values.get("weight_decay", group["weight_decay"])
        if "temperature" in values and hasattr(self.model, "temperature"):
            self.model.temperature = values["temperature"]
        if "momentum" in values and hasattr(self.model, "momentum"):
            self.model.momentum = values["momentum"]
        if "momentum" in values and hasattr(self.model, "tau_base"):
            self.model.tau_base = values["momentum"]

    def export_model(self, directory: Path):
        from algorithms.contrastive.serving import export

        return export(self.model.encoder, self.train_data.images)

    def write_artifacts(self, directory: Path, final: bool) -> None:
        if not final:
            batch = self.train_data.images[:8]
            views = torch.stack([batch, *[self.views.view(batch) for _ in range(7)]], dim=1).flatten(0, 1)
            save_image_grid(views, directory / "augmentations.png", nrow=8)
            return
        _, test_x = self._features()
        name = self.config["method"]
        embedding_plot(test_x.numpy(), self.test_data.labels.numpy(), directory / "embedding_tsne.png",
                       title=f"{name}: t-SNE of test features", seed=self.config["seed"])
        steps = [h["train/step"] for h in self.history]
        line_plot(steps, {"train/loss": [h["train/loss"] for h in self.history]}, directory / "loss_curve.png",
                  xlabel="training step", title=f"{name} loss")
        line_plot(steps, {"eval/knn_acc": [h["eval/knn_acc"] for h in self.history],
                          "eval/linear_acc": [h["eval/linear_acc"] for h in self.history]},
                  directory / "accuracy_curve.png", xlabel="training step", title="frozen-feature accuracy")
