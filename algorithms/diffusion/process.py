"""The DDPM forward process, its posterior, training targets and loss weightings.

Indices follow the code convention t = 0..T-1, where index t is the paper's step t+1:
alpha_bar[0] = 1 - beta_1 and alpha_bar[T-1] = alpha_bar_T.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from algorithms.diffusion.schedules import make_betas

PREDICTIONS = ("eps", "x0", "v")
WEIGHTINGS = ("uniform", "min_snr")


def _gather(values: torch.Tensor, t: torch.Tensor, ndim: int) -> torch.Tensor:
    """values[t] shaped to broadcast over a batch of images with `ndim` dims."""
    return values[t].reshape(-1, *([1] * (ndim - 1)))


class GaussianDiffusion:
    """Closed-form q(x_t | x_0), q(x_{t-1} | x_t, x_0) and the training loss."""

    def __init__(self, betas: torch.Tensor, prediction: str = "eps", weighting: str = "uniform",
                 min_snr_gamma: float = 5.0, device: torch.device | str = "cpu"):
        if prediction not in PREDICTIONS:
            raise ValueError(f"unknown prediction {prediction!r}; allowed: {', '.join(PREDICTIONS)}")
        if weighting not in WEIGHTINGS:
            raise ValueError(f"unknown loss weighting {weighting!r}; allowed: {', '.join(WEIGHTINGS)}")
        self.prediction = prediction
        self.weighting = weighting
        self.min_snr_gamma = min_snr_gamma
        self.timesteps = len(betas)

        betas = betas.to(torch.float64)
        alphas = 1.0 - betas
        alpha_bar = torch.cumprod(alphas, dim=0)
        alpha_bar_prev = torch.cat([torch.ones(1, dtype=torch.float64), alpha_bar[:-1]])
        posterior_var = betas * (1.0 - alpha_bar_prev) / (1.0 - alpha_bar)

        def as_buffer(x):
            return x.to(device=device, dtype=torch.float32)

        self.betas_f64 = betas
        self.alpha_bar_f64 = alpha_bar
        self.betas = as_buffer(betas)
        self.alphas = as_buffer(alphas)
        self.alpha_bar = as_buffer(alpha_bar)
        self.alpha_bar_prev = as_buffer(alpha_bar_prev)
        self.sqrt_alpha_bar = as_buffer(alpha_bar.sqrt())
        self.sqrt_one_minus_alpha_bar = as_buffer((1.0 - alpha_bar).sqrt())
        self.posterior_var = as_buffer(posterior_var)
        # log variance with the t=0 entry (0 by definition) replaced, as in Ho et al.'s code
        self.posterior_log_var = as_buffer(torch.log(torch.cat([posterior_var[1:2], posterior_var[1:]])))
        self.posterior_coef_x0 = as_buffer(betas * alpha_bar_prev.sqrt() / (1.0 - alpha_bar))
        self.posterior_coef_xt = as_buffer((1.0 - alpha_bar_prev) * alphas.sqrt() / (1.0 - alpha_bar))
        self.snr = as_buffer(alpha_bar / (1.0 - alpha_bar))

    @classmethod
    def from_schedule(cls, schedule: str, timesteps: int, zero_terminal_snr: bool = False, **kwargs):
        return cls(make_betas(schedule, timesteps, zero_terminal_snr), **kwargs)

    @property
    def alpha_bar_final(self) -> float:
        return float(self.alpha_bar_f64[-1])

    # forward process
    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps."""
        return (_gather(self.sqrt_alpha_bar, t, x0.ndim) * x0
                + _gather(self.sqrt_one_minus_alpha_bar, t, x0.ndim) * noise)

    def q_posterior(self, x0: torch.Tensor, xt: torch.Tensor, t: torch.Tensor):
        """Mean and variance of q(x_{t-1} | x_t, x_0) (Ho et al. eq. 6-7)."""
        mean = _gather(self.posterior_coef_x0, t, xt.ndim) * x0 + _gather(self.posterior_coef_xt, t, xt.ndim) * xt
        return mean, _gather(self.posterior_var, t, xt.ndim)

    # converting between what the network predicts and x0 / eps
    def predict_x0(self, xt: torch.Tensor, t: torch.Tensor, model_out: torch.Tensor) -> torch.Tensor:
        a = _gather(self.sqrt_alpha_bar, t, xt.ndim)
        s = _gather(self.sqrt_one_minus_alpha_bar, t, xt.ndim)
        if self.prediction == "eps":
            return (xt - s * model_out) / a.clamp(min=1e-8)
        if self.prediction == "x0":
            return model_out
        return a * xt - s * model_out  # v = a * eps - s * x0

    def predict_eps(self, xt: torch.Tensor, t: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        a = _gather(self.sqrt_alpha_bar, t, xt.ndim)
        s = _gather(self.sqrt_one_minus_alpha_bar, t, xt.ndim)
        return (xt - a * x0) / s.clamp(min=1e-8)

    def target(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if self.prediction == "eps":
            return noise
        if self.prediction == "x0":
            return x0
        a = _gather(self.sqrt_alpha_bar, t, x0.ndim)
        s = _gather(self.sqrt_one_minus_alpha_bar, t, x0.ndim)
        return a * noise - s * x0

    def loss_weights(self, t: torch.Tensor) -> torch.Tensor:
        """Per-sample weights; min-SNR-gamma (Hang et al. 2023) expressed for each target."""
        if self.weighting == "uniform":
            return torch.ones_like(t, dtype=torch.float32)
        snr = self.snr[t]
        clipped = snr.clamp(max=self.min_snr_gamma)
        if self.prediction == "eps":
            return clipped / snr.clamp(min=1e-8)
        if self.prediction == "x0":
            return clipped
        return clipped / (snr + 1.0)

    def loss(self, model: torch.nn.Module, x0: torch.Tensor, generator: torch.Generator | None = None):
        """L_simple-style loss: weighted MSE between network output and the chosen target."""
        batch = x0.shape[0]
        t = torch.randint(0, self.timesteps, (batch,), device=x0.device, generator=generator)
        noise = torch.randn(x0.shape, device=x0.device, generator=generator)
        xt = self.q_sample(x0, t, noise)
        per_sample = F.mse_loss(model(xt, t), self.target(x0, noise, t), reduction="none").mean(
            dim=tuple(range(1, x0.ndim)))
        return (self.loss_weights(t) * per_sample).mean()
