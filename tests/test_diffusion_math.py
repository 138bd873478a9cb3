"""Schedules, forward process, posterior and samplers checked against independent computations."""

import math

import pytest
import torch

from algorithms.diffusion.process import GaussianDiffusion
from algorithms.diffusion.samplers import ddim_sample, ddim_timesteps, ddpm_sample
from algorithms.diffusion.schedules import SCHEDULES, cosine_betas, linear_betas, make_betas


@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize("timesteps", [50, 1000])
def test_alpha_bar_decreases_to_near_zero(schedule, timesteps):
    betas = make_betas(schedule, timesteps)
    alpha_bar = torch.cumprod(1 - betas, 0)
    assert betas.shape == (timesteps,)
    assert ((betas > 0) & (betas < 1)).all()
    assert (alpha_bar[1:] < alpha_bar[:-1]).all(), "alpha_bar must be strictly decreasing"
    assert alpha_bar[0] > 0.9, "the first step adds only a little noise"
    assert alpha_bar[-1] < 1e-3, f"alpha_bar_T={alpha_bar[-1]:.2e}: x_T is not close to pure noise"


def test_linear_matches_ho_et_al_at_t1000():
    betas = linear_betas(1000)
    assert betas[0].item() == pytest.approx(1e-4)
    assert betas[-1].item() == pytest.approx(0.02)


def test_linear_is_rescaled_for_small_t():
    betas = linear_betas(100)
    assert betas[0].item() == pytest.approx(1e-3)
    assert betas[-1].item() == pytest.approx(0.2)


def test_cosine_follows_its_closed_form():
    T, s = 1000, 0.008
    alpha_bar = torch.cumprod(1 - cosine_betas(T), 0)
    f = lambda t: math.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2  # noqa: E731
    for t in (1, 10, 250, 500, 900):
        assert alpha_bar[t - 1].item() == pytest.approx(f(t) / f(0), rel=1e-9)


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_zero_terminal_snr_rescale(schedule):
    plain = torch.cumprod(1 - make_betas(schedule, 100), 0)
    rescaled = torch.cumprod(1 - make_betas(schedule, 100, zero_terminal_snr=True), 0)
    assert rescaled[-1].item() == pytest.approx(0.0, abs=1e-12)
    assert rescaled[0].item() == pytest.approx(plain[0].item(), rel=1e-9)
    assert (rescaled[1:] <= rescaled[:-1]).all()


def test_bad_schedule_arguments():
    with pytest.raises(ValueError, match="timesteps must be >= 1"):
        make_betas("linear", 0)
    with pytest.raises(ValueError, match="unknown schedule 'exp'"):
        make_betas("exp", 10)


def test_closed_form_q_sample_matches_iterated_forward_process():
    torch.manual_seed(0)
    diffusion = GaussianDiffusion.from_schedule("linear", 50)
    x0 = torch.tensor([0.8, -0.5, 0.1])
    n = 200_000
    x = x0.expand(n, 3).double()
    betas = diffusion.betas_f64
    for t in range(30):  # x_{t+1} = sqrt(1 - beta) x_t + sqrt(beta) eps, one step at a time
        x = (1 - betas[t]).sqrt() * x + betas[t].sqrt() * torch.randn_like(x)
    t = torch.full((n,), 29)
    closed = diffusion.q_sample(x0.expand(n, 3), t, torch.randn(n, 3))
    ab = diffusion.alpha_bar_f64[29]
    for sample in (x, closed.double()):
        assert torch.allclose(sample.mean(0), ab.sqrt() * x0.double(), atol=0.01)
        assert torch.allclose(sample.var(0), (1 - ab).expand(3), atol=0.01)


def test_posterior_matches_bayes_rule():
    diffusion = GaussianDiffusion.from_schedule("cosine", 100)
    x0, xt = torch.tensor([[0.3]]), torch.tensor([[-1.2]])
    for t in (1, 10, 50, 99):
        ab_prev, beta = diffusion.alpha_bar_f64[t - 1], diffusion.betas_f64[t]
        # q(x_{t-1}|x0) = N(sqrt(ab_prev) x0, 1 - ab_prev), q(x_t|x_{t-1}) = N(sqrt(1 - beta) x_{t-1}, beta)
        precision = 1 / (1 - ab_prev) + (1 - beta) / beta
        var = 1 / precision
        mean = var * (ab_prev.sqrt() * 0.3 / (1 - ab_prev) + (1 - beta).sqrt() * -1.2 / beta)
        got_mean, got_var = diffusion.q_posterior(x0, xt, torch.tensor([t]))
        assert got_mean.item() == pytest.approx(mean.item(), rel=1e-4)
        assert got_var.item() == pytest.approx(var.item(), rel=1e-4)


@pytest.mark.parametrize("prediction", ["eps", "x0", "v"])
def test_predict_x0_inverts_the_training_target(prediction):
    diffusion = GaussianDiffusion.from_schedule("cosine", 100, prediction=prediction)
    torch.manual_seed(1)
    x0, noise = torch.randn(6, 1, 4, 4), torch.randn(6, 1, 4, 4)
    t = torch.tensor([0, 5, 20, 50, 80, 98])
    xt = diffusion.q_sample(x0, t, noise)
    recovered = diffusion.predict_x0(xt, t, diffusion.target(x0, noise, t))
    assert torch.allclose(recovered, x0, atol=1e-4)
    assert torch.allclose(diffusion.predict_eps(xt, t, x0), noise, atol=1e-3)


def test_min_snr_weights():
    t = torch.arange(100)
    snr = GaussianDiffusion.from_schedule("cosine", 100).snr[t]
    gamma = 5.0
    expected = {"eps": snr.clamp(max=gamma) / snr, "x0": snr.clamp(max=gamma), "v": snr.clamp(max=gamma) / (snr + 1)}
    for prediction, want in expected.items():
        d = GaussianDiffusion.from_schedule("cosine", 100, prediction=prediction, weighting="min_snr",
                                            min_snr_gamma=gamma)
        assert torch.allclose(d.loss_weights(t), want)
    assert (GaussianDiffusion.from_schedule("cosine", 100).loss_weights(t) == 1).all()
    # high-noise steps (snr < gamma) keep full weight under eps prediction
    assert expected["eps"][-1] == pytest.approx(1.0)


class OracleModel(torch.nn.Module):
    """The exact eps-predictor for data that is a single point c: eps = (x_t - sqrt(ab) c) / sqrt(1 - ab)."""

    def __init__(self, diffusion, c):
        super().__init__()
        self.diffusion, self.c = diffusion, c

    def forward(self, x, t):
        return self.diffusion.predict_eps(x, t, self.c.expand_as(x))


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_samplers_recover_a_point_mass_with_an_oracle(schedule):
    diffusion = GaussianDiffusion.from_schedule(schedule, 100)
    c = torch.full((1, 1, 2, 2), 0.5)
    oracle = OracleModel(diffusion, c)
    gen = torch.Generator().manual_seed(0)
    assert torch.allclose(ddpm_sample(diffusion, oracle, (4, 1, 2, 2), generator=gen, clip=False), c, atol=1e-4)
    assert torch.allclose(ddim_sample(diffusion, oracle, (4, 1, 2, 2), steps=10, generator=gen, clip=False), c,
                          atol=1e-4)


def test_ancestral_step_equals_algorithm_2():
    """x_{t-1} = (x_t - beta_t / sqrt(1 - ab_t) eps) / sqrt(alpha_t) + sigma z, with sigma^2 = beta~_t."""
    diffusion = GaussianDiffusion.from_schedule("linear", 50)
    torch.manual_seed(3)
    xt, eps = torch.randn(5, 1, 3, 3), torch.randn(5, 1, 3, 3)
    t = torch.full((5,), 30)
    x0 = diffusion.predict_x0(xt, t, eps)
    mean, var = diffusion.q_posterior(x0, xt, t)
    alg2 = (xt - diffusion.betas[30] / diffusion.sqrt_one_minus_alpha_bar[30] * eps) / diffusion.alphas[30].sqrt()
    assert torch.allclose(mean, alg2, atol=1e-5)
    assert var[0].item() == pytest.approx(diffusion.posterior_var[30].item())


def test_ddim_timesteps():
    seq = ddim_timesteps(1000, 50)
    assert seq[0] == 999 and seq[-1] == 0 and len(seq) == 50
    assert all(a > b for a, b in zip(seq, seq[1:]))
    assert ddim_timesteps(10, 50) == list(range(9, -1, -1))


def test_frechet_distance_by_eigenvalues_equals_sqrtm():
    import numpy as np

    from algorithms.diffusion.metrics import feature_stats, frechet_distance, frechet_distance_eig

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(400, 16)), rng.normal(0.3, 1.2, size=(600, 16)) @ rng.normal(size=(16, 16)) * 0.3
    assert frechet_distance_eig(*feature_stats(a), *feature_stats(b)) == pytest.approx(
        frechet_distance(*feature_stats(a), *feature_stats(b)), rel=1e-6)


def test_frechet_interval_brackets_the_distance_and_narrows_with_more_samples():
    """The interval is the evaluation noise of the distance: it holds the point estimate and is
    narrower for 2,000 generated samples than for 200."""
    import numpy as np

    from algorithms.diffusion.metrics import feature_stats, frechet_distance, frechet_interval

    rng = np.random.default_rng(1)
    real = rng.normal(size=(2000, 8))
    widths = []
    for n in (200, 2000):
        generated = rng.normal(0.2, 1.1, size=(n, 8))
        point = frechet_distance(*feature_stats(generated), *feature_stats(real))
        low, high = frechet_interval(generated, real, point, resamples=100)
        assert low <= point <= high and low >= 0.0
        widths.append(high - low)
    assert widths[1] < widths[0] / 2
