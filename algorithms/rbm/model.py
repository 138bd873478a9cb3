"""A Bernoulli restricted Boltzmann machine at temperature T, trained by CD-k or persistent CD.

Energy E(v, h) = -b.v - c.h - v W h over binary v (visible) and h (hidden); the model is
p(v, h) = exp(-E(v, h) / T) / Z. Every unit is stochastic: it turns on with p = 1 / (1 + exp(-dE / T)),
where dE is the energy it saves by turning on (c_j + v W_j for a hidden unit). T = 1 is the usual RBM;
every quantity here (free energy, gradients, pseudo-likelihood, AIS) is of the tempered model, so a sweep
over T compares models that each learned at their own temperature.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


class RBM:
    def __init__(self, visible: int, hidden: int, temperature: float = 1.0, generator: torch.Generator | None = None,
                 device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32):
        gen = generator or torch.Generator(device=device).manual_seed(0)
        self.W = 0.01 * torch.randn(visible, hidden, generator=gen, device=device, dtype=dtype)
        self.b = torch.zeros(visible, device=device, dtype=dtype)  # visible biases
        self.c = torch.zeros(hidden, device=device, dtype=dtype)  # hidden biases
        self.T = float(temperature)

    @property
    def visible(self) -> int:
        return self.W.shape[0]

    @property
    def hidden(self) -> int:
        return self.W.shape[1]

    def hidden_probs(self, v: torch.Tensor) -> torch.Tensor:
        """sigmoid((c + v W) / T), in two kernels (small batches are bound by per-call overhead)."""
        if v.dim() == 1:
            return self.hidden_probs(v[None])[0]
        return torch.addmm(self.c, v, self.W, beta=1 / self.T, alpha=1 / self.T).sigmoid_()

    def visible_probs(self, h: torch.Tensor) -> torch.Tensor:
        if h.dim() == 1:
            return self.visible_probs(h[None])[0]
        return torch.addmm(self.b, h, self.W.T, beta=1 / self.T, alpha=1 / self.T).sigmoid_()

    def free_energy(self, v: torch.Tensor) -> torch.Tensor:
        """F(v) = -T log sum_h exp(-E(v, h) / T), so that p(v) = exp(-F(v) / T) / Z; per row of v."""
        return -(v @ self.b) - self.T * F.softplus((v @ self.W + self.c) / self.T).sum(-1)

    def gibbs(self, v: torch.Tensor, steps: int, generator: torch.Generator) -> torch.Tensor:
        """`steps` rounds of v -> h -> v, sampling every unit."""
        return self.gibbs_with_hidden(v, steps, generator)[0]

    def gibbs_with_hidden(self, v: torch.Tensor, steps: int, generator: torch.Generator,
                          hidden: torch.Tensor | None = None,
                          uniforms: tuple[torch.Tensor, torch.Tensor] | None = None) -> tuple[torch.Tensor, ...]:
        """The chain's state after `steps` rounds and p(h | that state); `hidden` is p(h | v) when the caller
        has it already. Training reuses both, so each round costs no extra pass. `uniforms`: (steps, B, H) and
        (steps, B, V) uniform noise drawn ahead (a unit is on where its noise is below its probability):
        one large draw per epoch is several times cheaper than a small one per round."""
        hidden = self.hidden_probs(v) if hidden is None else hidden
        for step in range(steps):
            if uniforms is None:
                h = torch.bernoulli(hidden, generator=generator)
                v = torch.bernoulli(self.visible_probs(h), generator=generator)
            else:  # ceil(p - u) is 1 where u < p, else 0 (or -0.0): a Bernoulli draw in two cheap kernels
                h = torch.sub(hidden, uniforms[0][step]).ceil_()
                v = torch.sub(self.visible_probs(h), uniforms[1][step]).ceil_()
            hidden = self.hidden_probs(v)
        return v, hidden

    def gradient(self, data: torch.Tensor, negatives: torch.Tensor, ph_data: torch.Tensor | None = None,
                 ph_neg: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        """The log-likelihood gradient's estimate (dW, db, dc), ascent direction: data statistics minus the
        statistics at the negative samples, with hidden probabilities in place of hidden samples (the usual
        variance reduction). Each is divided by T, as d log p / d theta is for the tempered model.
        `ph_data` / `ph_neg`: p(h | data) and p(h | negatives), where the caller has them."""
        ph_data = self.hidden_probs(data) if ph_data is None else ph_data
        ph_neg = self.hidden_probs(negatives) if ph_neg is None else ph_neg
        scale = 1 / (len(data) * self.T)
        dW = torch.addmm(data.T @ ph_data, negatives.T, ph_neg, beta=scale, alpha=-scale)
        db, dc = (data - negatives).mean(0), (ph_data - ph_neg).mean(0)
        if self.T != 1:
            db, dc = db / self.T, dc / self.T
        return dW, db, dc

    def pseudo_log_likelihood(self, v: torch.Tensor, units: torch.Tensor | None = None) -> torch.Tensor:
        """Per row: n * log sigmoid((F(v with unit i flipped) - F(v)) / T), the estimator scikit-learn's
        BernoulliRBM.score_samples computes for one unit i per row (given in `units`); without `units`,
        its expectation over every i (the mean over all units), which has no sampling noise."""
        n = v.shape[1]
        fe = self.free_energy(v)
        if units is not None:
            flipped = v.clone()
            rows = torch.arange(len(v), device=v.device)
            flipped[rows, units] = 1 - flipped[rows, units]
            return n * F.logsigmoid((self.free_energy(flipped) - fe) / self.T)
        total = torch.zeros_like(fe)
        for i in range(n):
            flipped = v.clone()
            flipped[:, i] = 1 - flipped[:, i]
            total += F.logsigmoid((self.free_energy(flipped) - fe) / self.T)
        return total  # n * mean over i

    def reconstruction_error(self, v: torch.Tensor) -> float:
        """Mean squared error of one mean-field pass v -> p(h|v) -> p(v|h), per pixel."""
        return float((v - self.visible_probs(self.hidden_probs(v))).pow(2).mean())

    def state_dict(self) -> dict:
        return {"W": self.W.cpu(), "b": self.b.cpu(), "c": self.c.cpu(), "T": self.T}

    def load_state_dict(self, state: dict) -> None:
        device = self.W.device
        self.W, self.b, self.c = (state[k].to(device) for k in ("W", "b", "c"))
        self.T = float(state["T"])


def log_partition_exact(rbm: RBM) -> float:
    """log Z of the tempered model by enumerating the smaller layer (tests and small models only)."""
    if rbm.hidden <= rbm.visible:
        if rbm.hidden > 24:
            raise ValueError("exact log Z needs at most 24 units in the smaller layer")
        h = all_states(rbm.hidden, rbm.W)
        # sum over v in closed form: log sum_v exp((b.v + c.h + v W h) / T)
        log_terms = (h @ rbm.c) / rbm.T + F.softplus((h @ rbm.W.T + rbm.b) / rbm.T).sum(-1)
    else:
        if rbm.visible > 24:
            raise ValueError("exact log Z needs at most 24 units in the smaller layer")
        log_terms = -rbm.free_energy(all_states(rbm.visible, rbm.W)) / rbm.T
    return float(torch.logsumexp(log_terms.double(), 0))


def all_states(n: int, like: torch.Tensor) -> torch.Tensor:
    """Every binary vector of length n, one per row (2^n rows)."""
    codes = torch.arange(2 ** n, device=like.device)
    return ((codes[:, None] >> torch.arange(n, device=like.device)) & 1).to(like.dtype)


def ais_log_partition(rbm: RBM, base_bias: torch.Tensor, betas: torch.Tensor, chains: int,
                      generator: torch.Generator, level: float = 0.95) -> dict:
    """Annealed importance sampling (Salakhutdinov & Murray 2008) of log Z, from a base-rate model (visible
    biases `base_bias`, usually the data's log-odds, no weights) to the RBM, through the distributions
    p_k(v) ~ exp((1 - beta_k) a.v) * exp(beta_k (b.v / T)) * prod_j (1 + exp(beta_k (c_j + v W_j) / T)).

    Returns {"log_z", "log_z_low", "log_z_high"}: log of the mean importance weight, and the interval
    log(mean +- z * standard error) that the paper reports (the low end is -inf when the interval reaches 0)."""
    W, b, c = rbm.W / rbm.T, rbm.b / rbm.T, rbm.c / rbm.T
    a = base_bias.to(W)

    def log_unnormalised(v: torch.Tensor, beta: float) -> torch.Tensor:
        return (1 - beta) * (v @ a) + beta * (v @ b) + F.softplus(beta * (v @ W + c)).sum(-1)

    v = torch.bernoulli(torch.sigmoid(a).expand(chains, -1).contiguous(), generator=generator)
    log_w = torch.zeros(chains, dtype=torch.float64, device=W.device)
    for previous, beta in zip(betas[:-1].tolist(), betas[1:].tolist()):
        log_w += (log_unnormalised(v, beta) - log_unnormalised(v, previous)).double()
        h = torch.bernoulli(torch.sigmoid(beta * (v @ W + c)), generator=generator)
        v = torch.bernoulli(torch.sigmoid((1 - beta) * a + beta * (h @ W.T + b)), generator=generator)
    log_z_base = float(F.softplus(a).sum()) + rbm.hidden * math.log(2.0)
    from scipy.stats import norm

    shift = float(log_w.max())
    weights = torch.exp(log_w - shift)
    mean, se = float(weights.mean()), float(weights.std() / math.sqrt(chains))
    z = float(norm.ppf((1 + level) / 2))
    low = mean - z * se
    return {"log_z": log_z_base + shift + math.log(mean),
            "log_z_low": log_z_base + shift + math.log(low) if low > 0 else float("-inf"),
            "log_z_high": log_z_base + shift + math.log(mean + z * se)}


def default_betas(steps: int) -> torch.Tensor:
    """Salakhutdinov & Murray's spacing, scaled to `steps`: a tenth of them on [0, 0.5], four tenths on
    [0.5, 0.9], half on [0.9, 1] (the distributions change fastest near the model)."""
    first, second = steps // 10, 4 * steps // 10
    return torch.cat([torch.linspace(0, 0.5, first + 1)[:-1], torch.linspace(0.5, 0.9, second + 1)[:-1],
                      torch.linspace(0.9, 1.0, steps - first - second + 1)]).double()
