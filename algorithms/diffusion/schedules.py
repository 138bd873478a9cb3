"""Noise schedules for DDPM: each returns betas (T,) as float64 for exact maths.

All schedules are defined so that alpha_bar_T is close to 0 for any T, which is
what lets a sampler start from pure Gaussian noise.
"""

from __future__ import annotations

import math

import torch

MAX_BETA = 0.999

SCHEDULES = ("linear", "cosine", "sigmoid", "quadratic")


def linear_betas(timesteps: int) -> torch.Tensor:
    """Ho et al. 2020 (1e-4 .. 0.02 at T=1000), scaled by 1000/T (Nichol & Dhariwal)."""
    scale = 1000.0 / timesteps
    return torch.linspace(1e-4 * scale, 0.02 * scale, timesteps, dtype=torch.float64).clamp(max=MAX_BETA)


def quadratic_betas(timesteps: int) -> torch.Tensor:
    """Linear in sqrt(beta) between the same end points as `linear_betas`."""
    scale = 1000.0 / timesteps
    start, end = math.sqrt(1e-4 * scale), math.sqrt(0.02 * scale)
    return (torch.linspace(start, end, timesteps, dtype=torch.float64) ** 2).clamp(max=MAX_BETA)


def _betas_from_alpha_bar(alpha_bar_fn, timesteps: int) -> torch.Tensor:
    """beta_t = 1 - abar(t/T) / abar((t-1)/T), capped so the last step stays finite."""
    t = torch.arange(timesteps + 1, dtype=torch.float64) / timesteps
    alpha_bar = alpha_bar_fn(t)
    alpha_bar = alpha_bar / alpha_bar[0]
    return (1.0 - alpha_bar[1:] / alpha_bar[:-1]).clamp(min=0.0, max=MAX_BETA)


def cosine_betas(timesteps: int, s: float = 0.008) -> torch.Tensor:
    """Nichol & Dhariwal 2021: abar(t) = cos^2(((t + s) / (1 + s)) * pi / 2)."""
    return _betas_from_alpha_bar(lambda t: torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2, timesteps)


def sigmoid_betas(timesteps: int, start: float = -3.0, end: float = 3.0, tau: float = 1.0) -> torch.Tensor:
    """Chen 2023 ("On the importance of noise scheduling"): abar follows a sigmoid in t."""
    v_start = torch.sigmoid(torch.tensor(start / tau, dtype=torch.float64))
    v_end = torch.sigmoid(torch.tensor(end / tau, dtype=torch.float64))

    def alpha_bar(t):
        return (v_end - torch.sigmoid((t * (end - start) + start) / tau)) / (v_end - v_start)

    return _betas_from_alpha_bar(alpha_bar, timesteps)


def rescale_zero_terminal_snr(betas: torch.Tensor) -> torch.Tensor:
    """Lin et al. 2024: shift/scale sqrt(abar) so abar_T = 0 exactly while keeping abar_1."""
    if len(betas) == 1:
        return torch.ones_like(betas)
    sqrt_ab = torch.cumprod(1.0 - betas, dim=0).sqrt()
    first, last = sqrt_ab[0].clone(), sqrt_ab[-1].clone()
    sqrt_ab = (sqrt_ab - last) * first / (first - last)
    alpha_bar = sqrt_ab**2
    alphas = torch.cat([alpha_bar[:1], alpha_bar[1:] / alpha_bar[:-1]])
    return 1.0 - alphas


def make_betas(name: str, timesteps: int, zero_terminal_snr: bool = False) -> torch.Tensor:
    """Betas for a named schedule; raises ValueError with the allowed names."""
    if timesteps < 1:
        raise ValueError(f"timesteps must be >= 1, got {timesteps}")
    builders = {
        "linear": linear_betas,
        "cosine": cosine_betas,
        "sigmoid": sigmoid_betas,
        "quadratic": quadratic_betas,
    }
    if name not in builders:
        raise ValueError(f"unknown schedule {name!r}; allowed: {', '.join(SCHEDULES)}")
    betas = builders[name](timesteps)
    return rescale_zero_terminal_snr(betas) if zero_terminal_snr else betas
