"""GAN training loop, separate from Tune so tests and benchmarks drive it directly."""

from __future__ import annotations

import time
from pathlib import Path

import torch

from algorithms.data import DeviceImages, ImageData, dataset_from_config
from algorithms.device import generator_state, load_generator_state, select_device
from algorithms.diffusion.metrics import load_scorer
from algorithms.ema import EMA
from algorithms.gan.coverage import mode_scores, predict_classes
from algorithms.gan.losses import discriminator_loss, generator_loss, r1_penalty
from algorithms.gan.networks import Discriminator, Generator


class GANTrainer:
    """Owns G, D, G's EMA, both optimisers (TTUR: a learning rate each, Adam's beta1 shared) and the data.
    One generator step follows `d_steps` discriminator steps; samples for scores come from the EMA of G."""

    def __init__(self, config: dict, data: ImageData | None = None, device: torch.device | None = None):
        self.config = config
        self.device = device or select_device(config.get("device", "auto"))
        torch.manual_seed(config["seed"])
        self.data = data if data is not None else dataset_from_config(config)
        self.images = DeviceImages(self.data.images, self.device)
        self.labels = self.data.labels.to(self.device)
        classes = self.data.num_classes if config["conditional"] else 0
        self.generator = Generator(self.data.shape, config["latent_dim"], config["width"], classes).to(self.device)
        self.discriminator = Discriminator(self.data.shape, config["width"], classes).to(self.device)
        self.ema = EMA(self.generator, config["ema_decay"])
        betas = (config["beta1"], config["beta2"])
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=config["lr_g"], betas=betas)
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=config["lr_d"], betas=betas)
        self.rng = torch.Generator(device=self.device).manual_seed(config["seed"])
        self.step = 0
        self._scorer = None

    @property
    def conditional(self) -> bool:
        return bool(self.config["conditional"])

    @property
    def scorer(self):
        """The FID scorer diffusion uses (same classifier features, cache and bootstrap)."""
        if self._scorer is None:
            self._scorer = load_scorer(self.data, self.config["cache_dir"])
        return self._scorer

    def _latents(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor | None]:
        """n latent vectors, and for a conditional GAN labels drawn as often as the data has them."""
        z = torch.randn(n, self.config["latent_dim"], device=self.device, generator=generator)
        if not self.conditional:
            return z, None
        idx = torch.randint(0, len(self.labels), (n,), device=self.device, generator=generator)
        return z, self.labels[idx]

    def train(self, steps: int) -> dict:
        """`steps` generator steps; the mean losses, D's accuracy on its last batches, and throughput."""
        config, batch = self.config, self.config["batch_size"]
        self.generator.train()
        totals = {"d_loss": 0.0, "g_loss": 0.0, "d_accuracy": 0.0, "r1": 0.0}
        start = time.perf_counter()
        for _ in range(steps):
            for _ in range(config["d_steps"]):
                idx = torch.randint(0, len(self.images), (batch,), device=self.device, generator=self.rng)
                real, real_labels = self.images.batch(idx), (self.labels[idx] if self.conditional else None)
                z, fake_labels = self._latents(batch, self.rng)
                with torch.no_grad():
                    fake = self.generator(z, fake_labels)
                d_real, d_fake = self.discriminator(real, real_labels), self.discriminator(fake, fake_labels)
                loss_d = discriminator_loss(config["loss"], d_real, d_fake)
                if config["r1_gamma"] > 0:
                    r1 = r1_penalty(self.discriminator, real, real_labels)
                    loss_d = loss_d + config["r1_gamma"] / 2 * r1
                    totals["r1"] += r1.item() / config["d_steps"]
                self._check(loss_d, "discriminator")
                self.opt_d.zero_grad(set_to_none=True)
                loss_d.backward()
                self.opt_d.step()
            self.discriminator.requires_grad_(False)  # G's step needs gradients through D, not for it
            z, fake_labels = self._latents(batch, self.rng)
            loss_g = generator_loss(config["loss"], self.discriminator(self.generator(z, fake_labels), fake_labels))
            self._check(loss_g, "generator")
            self.opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            self.opt_g.step()
            self.discriminator.requires_grad_(True)
            self.ema.update(self.generator)
            totals["d_loss"] += loss_d.item()
            totals["g_loss"] += loss_g.item()
            totals["d_accuracy"] += ((d_real > 0).float().mean() + (d_fake < 0).float().mean()).item() / 2
            self.step += 1
        elapsed = time.perf_counter() - start
        metrics = {f"train/{key}": value / max(steps, 1) for key, value in totals.items()}
        if config["r1_gamma"] <= 0:
            metrics.pop("train/r1")
        metrics.update({"train/images_per_s": steps * config["d_steps"] * batch / max(elapsed, 1e-9),
                        "train/step": self.step})
        return metrics

    def _check(self, loss: torch.Tensor, network: str) -> None:
        if not torch.isfinite(loss):
            raise FloatingPointError(f"{network} loss is {loss.item()} at step {self.step}; lower lr_g / lr_d "
                                     f"(now {self.config['lr_g']} / {self.config['lr_d']}) or add r1_gamma")

    @torch.no_grad()
    def generate(self, n: int, seed: int | None = None, labels: torch.Tensor | None = None) -> torch.Tensor:
        """n samples from the EMA generator in [-1, 1] (labels: the classes to draw, conditional only)."""
        gen = torch.Generator(device=self.device).manual_seed(self.config["seed"] if seed is None else seed)
        z, drawn = self._latents(n, gen)
        if labels is not None:
            drawn = labels.to(self.device)
        self.ema.model.eval()
        out = [self.ema.model(z[i:i + 1000], None if drawn is None else drawn[i:i + 1000]) for i in range(0, n, 1000)]
        return torch.cat(out).clamp(-1, 1).cpu()

    def evaluate(self) -> dict:
        """eval/fid with its interval (as diffusion's), and mode coverage / class KL of `coverage_samples`."""
        seed = self.config["seed"]
        scores = self.scorer.score_with_interval(self.generate(self.config["eval_samples"], seed=seed + 1),
                                                 self.data.images, seed=seed)
        predicted = predict_classes(self.scorer.classifier, self.generate(self.config["coverage_samples"],
                                                                          seed=seed + 3))
        scores.update(mode_scores(predicted, self.data.labels.numpy(), self.data.num_classes, seed=seed))
        return {f"eval/{key}": value for key, value in scores.items()}

    def state_dict(self) -> dict:
        return {"G": self.generator.state_dict(), "D": self.discriminator.state_dict(), "ema": self.ema.state_dict(),
                "opt_G": self.opt_g.state_dict(), "opt_D": self.opt_d.state_dict(), "step": self.step,
                **generator_state(self.rng)}  # the random generator's state, under "generator"

    def load_state_dict(self, state: dict) -> None:
        self.generator.load_state_dict(state["G"])
        self.discriminator.load_state_dict(state["D"])
        self.ema.load_state_dict(state["ema"])
        self.opt_g.load_state_dict(state["opt_G"])
        self.opt_d.load_state_dict(state["opt_D"])
        self.step = state["step"]
        load_generator_state(self.rng, state, fallback_seed=self.config["seed"] * 1_000_003 + self.step)

    def save(self, path: Path) -> None:
        torch.save(self.state_dict(), path)

    def load(self, path: Path) -> None:
        self.load_state_dict(torch.load(path, map_location=self.device, weights_only=False))
