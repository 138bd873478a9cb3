"""Samplers: DDPM ancestral sampling (Ho et al. Algorithm 2) and DDIM (Song et al. 2021)."""

from __future__ import annotations

import torch

from algorithms.diffusion.process import GaussianDiffusion

SAMPLERS = ("ddpm", "ddim")


def _model_x0(diffusion: GaussianDiffusion, model, x: torch.Tensor, t: int, clip: bool) -> torch.Tensor:
    tt = torch.full((x.shape[0],), t, device=x.device, dtype=torch.long)
    x0 = diffusion.predict_x0(x, tt, model(x, tt))
    return x0.clamp(-1.0, 1.0) if clip else x0


@torch.no_grad()
def ddpm_sample(diffusion: GaussianDiffusion, model, shape, generator: torch.Generator | None = None,
                device="cpu", clip: bool = True) -> torch.Tensor:
    """T ancestral steps x_T -> x_0 through the posterior of the predicted x_0.

    Without clipping this equals Algorithm 2 with sigma_t^2 = beta~_t exactly.
    """
    x = torch.randn(shape, generator=generator, device=device)
    for t in reversed(range(diffusion.timesteps)):
        tt = torch.full((shape[0],), t, device=device, dtype=torch.long)
        mean, _ = diffusion.q_posterior(_model_x0(diffusion, model, x, t, clip), x, tt)
        if t > 0:
            noise = torch.randn(shape, generator=generator, device=device)
            x = mean + (0.5 * diffusion.posterior_log_var[t]).exp() * noise
        else:
            x = mean
    return x


def ddim_timesteps(timesteps: int, steps: int) -> list[int]:
    """Evenly spaced subsequence of 0..T-1 that always contains T-1, in descending order."""
    steps = max(1, min(steps, timesteps))
    seq = torch.linspace(0, timesteps - 1, steps).round().long().unique().tolist()
    return sorted(seq, reverse=True)


@torch.no_grad()
def ddim_sample(diffusion: GaussianDiffusion, model, shape, steps: int = 50, eta: float = 0.0,
                generator: torch.Generator | None = None, device="cpu", clip: bool = True) -> torch.Tensor:
    """DDIM update on a subsequence of timesteps; eta=0 is deterministic, eta=1 is DDPM-like."""
    x = torch.randn(shape, generator=generator, device=device)
    seq = ddim_timesteps(diffusion.timesteps, steps)
    for i, t in enumerate(seq):
        x0 = _model_x0(diffusion, model, x, t, clip)
        tt = torch.full((shape[0],), t, device=device, dtype=torch.long)
        eps = diffusion.predict_eps(x, tt, x0)
        ab = diffusion.alpha_bar[t]
        ab_prev = diffusion.alpha_bar[seq[i + 1]] if i + 1 < len(seq) else torch.tensor(1.0, device=device)
        sigma = eta * ((1 - ab_prev) / (1 - ab) * (1 - ab / ab_prev)).clamp(min=0).sqrt()
        x = ab_prev.sqrt() * x0 + (1 - ab_prev - sigma**2).clamp(min=0).sqrt() * eps
        if eta > 0 and i + 1 < len(seq):
            x = x + sigma * torch.randn(shape, generator=generator, device=device)
    return x


def sample(diffusion: GaussianDiffusion, model, shape, sampler: str = "ddim", steps: int = 50,
           generator: torch.Generator | None = None, device="cpu") -> torch.Tensor:
    if sampler == "ddpm":
        return ddpm_sample(diffusion, model, shape, generator=generator, device=device)
    if sampler == "ddim":
        return ddim_sample(diffusion, model, shape, steps=steps, generator=generator, device=device)
    raise ValueError(f"unknown sampler {sampler!r}; allowed: {', '.join(SAMPLERS)}")
