"""Benchmark (not a test): our DDPM U-Net against the same-size HuggingFace diffusers model.

Both train on scikit-learn's 8x8 digits with the same recipe: epsilon prediction, linear betas
1e-4..0.02 over T=1000, Adam lr 1e-3, batch 128, grad clip 1.0, EMA 0.995, one torch thread (a Tune
trial's 1 CPU). Ours is `algorithms.diffusion.trainer.DiffusionTrainer` exactly as a sweep trial runs
it. Theirs is diffusers' standard training loop: `UNet2DModel` (16/32 channels, one ResNet block per
level, attention in the middle block: the same shape as ours) + `DDPMScheduler.add_noise` + MSE +
`EMAModel`, sampled with `DDIMScheduler` (50 steps), as diffusers' DDPM pipeline does.

Measures (1) training throughput in images/s after a warm-up, and (2) eval/fid (the sweep's metric:
Frechet distance in the project's digits-classifier features, 500 samples, DDIM 50 steps) after the
same wall-clock training time.

    python bench/diffusion.py --train-seconds 180
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from common import write_result

BATCH, LR, CLIP, EMA_DECAY, T = 128, 1e-3, 1.0, 0.995, 1000


def our_trainer():
    from algorithms.diffusion import PARAMS
    from algorithms.diffusion.trainer import DiffusionTrainer

    config = {name: spec.default for name, spec in PARAMS.items()}
    config.update(dataset="digits", schedule="linear", timesteps=T, lr=LR, batch_size=BATCH, grad_clip=CLIP,
                  ema_decay=EMA_DECAY, seed=0)
    return DiffusionTrainer(config, device=torch.device("cpu"))


class DiffusersTrainer:
    """diffusers' unconditional DDPM training loop (examples/unconditional_image_generation), same data."""

    def __init__(self, images: torch.Tensor, seed: int = 0):
        from diffusers import DDPMScheduler, UNet2DModel
        from diffusers.training_utils import EMAModel

        torch.manual_seed(seed)
        self.images = images
        self.model = UNet2DModel(sample_size=8, in_channels=1, out_channels=1, block_out_channels=(16, 32),
                                 layers_per_block=1, down_block_types=("DownBlock2D", "DownBlock2D"),
                                 up_block_types=("UpBlock2D", "UpBlock2D"), norm_num_groups=8,
                                 attention_head_dim=8)
        self.scheduler = DDPMScheduler(num_train_timesteps=T, beta_schedule="linear")
        self.ema = EMAModel(self.model.parameters(), decay=EMA_DECAY)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=LR)
        self.generator = torch.Generator().manual_seed(seed)

    def train(self, steps: int) -> None:
        self.model.train()
        for _ in range(steps):
            x0 = self.images[torch.randint(0, len(self.images), (BATCH,), generator=self.generator)]
            noise = torch.randn(x0.shape, generator=self.generator)
            t = torch.randint(0, T, (BATCH,), generator=self.generator)
            loss = F.mse_loss(self.model(self.scheduler.add_noise(x0, noise, t), t).sample, noise)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), CLIP)
            self.optimizer.step()
            self.ema.step(self.model.parameters())

    @torch.no_grad()
    def generate(self, n: int, seed: int) -> torch.Tensor:
        from diffusers import DDIMScheduler

        self.ema.store(self.model.parameters())
        self.ema.copy_to(self.model.parameters())
        self.model.eval()
        sampler = DDIMScheduler.from_config(self.scheduler.config)
        sampler.set_timesteps(50)
        x = torch.randn((n, 1, 8, 8), generator=torch.Generator().manual_seed(seed))
        for t in sampler.timesteps:
            x = sampler.step(self.model(x, t).sample, t, x).prev_sample
        self.ema.restore(self.model.parameters())
        return x.clamp(-1, 1)


def throughput(train, steps: int, warmup: int = 10) -> float:
    train(warmup)
    start = time.perf_counter()
    train(steps)
    return steps * BATCH / (time.perf_counter() - start)


def train_for(train, seconds: float, chunk: int = 25) -> int:
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        train(chunk)
        steps += chunk
    return steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--throughput-steps", type=int, default=200)
    parser.add_argument("--train-seconds", type=float, default=180.0, help="equal wall time for the FID part")
    parser.add_argument("--eval-samples", type=int, default=500)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    ours = our_trainer()
    theirs = DiffusersTrainer(ours.images)
    scorer = ours.scorer
    rows = {}
    for name, trainer, train, generate in (
            ("ours", ours, ours.train, lambda: ours.generate(args.eval_samples, seed=1)),
            ("diffusers", theirs, theirs.train, lambda: theirs.generate(args.eval_samples, seed=1))):
        params = sum(p.numel() for p in trainer.model.parameters())
        fid_untrained = scorer.score(generate())
        images_per_s = throughput(train, args.throughput_steps)
        steps = train_for(train, args.train_seconds)
        fid = scorer.score(generate())
        rows[name] = {"parameters": params, "images_per_s": round(images_per_s, 1),
                      "steps_in_budget": steps + args.throughput_steps + 10, "fid_untrained": round(fid_untrained, 2),
                      "fid": round(fid, 2)}
        print(name, rows[name], flush=True)
    write_result("diffusion", {"train_seconds": args.train_seconds, "threads": args.threads,
                               "fid_real_floor": round(scorer.score(ours.data.images[torch.randperm(
                                   len(ours.data.images), generator=torch.Generator().manual_seed(0))[
                                   :args.eval_samples]]), 2),
                               "rows": rows,
                               "throughput_ratio": round(rows["ours"]["images_per_s"]
                                                         / rows["diffusers"]["images_per_s"], 2)})


if __name__ == "__main__":
    main()
