"""DDPM training loop, separate from Tune so tests and scripts can drive it directly."""

from __future__ import annotations

import time
from pathlib import Path

import torch

from algorithms.data import DeviceImages, ImageData, dataset_from_config
from algorithms.device import generator_state, load_generator_state, select_device
from algorithms.diffusion.metrics import load_scorer
from algorithms.diffusion.process import GaussianDiffusion
from algorithms.diffusion.samplers import sample
from algorithms.diffusion.unet import UNet
from algorithms.ema import EMA
from algorithms.speedups import MixedPrecision, compile_in_place, set_channels_last, to_memory_format


class DiffusionTrainer:
    """Owns model, EMA, optimizer and data; `train` and `evaluate` are one Tune iteration. The speed-ups
    (`precision`, `compile`, `channels_last`) apply to training steps; the EMA model, which samples for
    evaluation and artifacts, runs in fp32 and is not compiled."""

    def __init__(self, config: dict, data: ImageData | None = None, device: torch.device | None = None):
        self.config = config
        self.device = device or select_device(config.get("device", "auto"))
        torch.manual_seed(config["seed"])
        self.data = data if data is not None else dataset_from_config(config)
        self.images = DeviceImages(self.data.images, self.device)
        self.diffusion = GaussianDiffusion.from_schedule(
            config["schedule"], config["timesteps"], config["zero_terminal_snr"],
            prediction=config["prediction"], weighting=config["loss_weighting"],
            min_snr_gamma=config["min_snr_gamma"], device=self.device)
        self.model = UNet(in_channels=self.data.shape[0], base_channels=config["base_channels"],
                          channel_mults=tuple(config["channel_mults"]),
                          attention_levels=tuple(config["attention_levels"])).to(self.device)
        set_channels_last(self.model, config)
        self.ema = EMA(self.model, config["ema_decay"])  # a copy made before compiling: it samples in eager mode
        compile_in_place(self.model, config)
        self.precision = MixedPrecision(config.get("precision", "fp32"), self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config["lr"])
        self.generator = torch.Generator(device=self.device).manual_seed(config["seed"])
        self.step = 0
        self._scorer = None

    @property
    def scorer(self):
        if self._scorer is None:
            self._scorer = load_scorer(self.data, self.config["cache_dir"])
        return self._scorer

    def train(self, steps: int) -> dict:
        """Run `steps` optimizer steps; return the mean loss and throughput."""
        self.model.train()
        batch, total, start = self.config["batch_size"], 0.0, time.perf_counter()
        for _ in range(steps):
            idx = torch.randint(0, len(self.images), (batch,), device=self.device, generator=self.generator)
            x0 = to_memory_format(self.images.batch(idx), self.config)
            if self.config["random_flip"]:
                flip = torch.rand(batch, device=self.device, generator=self.generator) < 0.5
                x0 = torch.where(flip[:, None, None, None], x0.flip(-1), x0)
            with self.precision.autocast():
                loss = self.diffusion.loss(self.model, x0, generator=self.generator)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"training loss is {loss.item()} at step {self.step}; "
                                         f"lower lr (now {self.config['lr']}) or grad_clip")
            self.optimizer.zero_grad(set_to_none=True)
            self.precision.backward_and_step(loss, self.optimizer, self.config["grad_clip"])
            self.ema.update(self.model)
            total += loss.item()
            self.step += 1
        elapsed = time.perf_counter() - start
        return {"train/loss": total / max(steps, 1), "train/images_per_s": steps * batch / max(elapsed, 1e-9),
                "train/step": self.step}

    def generate(self, n: int, seed: int | None = None) -> torch.Tensor:
        """n samples from the EMA model with the configured sampler, in [-1, 1]."""
        gen = torch.Generator(device=self.device).manual_seed(self.config["seed"] if seed is None else seed)
        out = []
        for i in range(0, n, 1000):
            shape = (min(1000, n - i), *self.data.shape)
            out.append(sample(self.diffusion, self.ema.model, shape, sampler=self.config["sampler"],
                              steps=self.config["sample_steps"], generator=gen, device=self.device))
        return torch.cat(out).clamp(-1, 1).cpu()

    def evaluate(self) -> dict:
        """eval/fid of `eval_samples` generated images, with its 95% evaluation-noise interval."""
        samples = self.generate(self.config["eval_samples"], seed=self.config["seed"] + 1)
        scores = self.scorer.score_with_interval(samples, self.data.images, seed=self.config["seed"])
        return {f"eval/{key}": value for key, value in scores.items()}

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "ema": self.ema.state_dict(),
                "optimizer": self.optimizer.state_dict(), "step": self.step, "scaler": self.precision.state_dict(),
                **generator_state(self.generator)}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.ema.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step = state["step"]
        self.precision.load_state_dict(state.get("scaler", {}))
        load_generator_state(self.generator, state, fallback_seed=self.config["seed"] * 1_000_003 + self.step)

    def save(self, path: Path) -> None:
        torch.save(self.state_dict(), path)

    def load(self, path: Path) -> None:
        self.load_state_dict(torch.load(path, map_location=self.device, weights_only=False))
