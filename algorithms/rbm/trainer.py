"""RBM training on binarised images (CD-k or PCD-k, momentum, weight decay), and its held-out scores."""

from __future__ import annotations

import time
from pathlib import Path

import torch

from algorithms.data import ImageData, dataset_from_config
from algorithms.device import generator_state, load_generator_state, select_device
from algorithms.rbm.model import RBM, ais_log_partition, default_betas

TEST_SPLIT_SEED = 0  # every trial scores on the same held-out images, whatever its seed


def binarise(data: ImageData) -> torch.Tensor:
    """(N, C, H, W) in [-1, 1] -> (N, C*H*W) in {0, 1}: a pixel is on above mid-grey."""
    return (data.images.flatten(1) > 0).float()


class RBMTrainer:
    """Owns the RBM, its momentum buffers, the persistent chains (PCD) and the train / test split (80 / 20,
    fixed). `train(epochs)` passes over the training images in shuffled mini-batches."""

    def __init__(self, config: dict, data: ImageData | None = None, device: torch.device | None = None):
        self.config = config
        self.device = device or select_device(config.get("device", "auto"))
        self.data = data if data is not None else dataset_from_config(config)
        train, test = self.data.split(0.2, seed=TEST_SPLIT_SEED)
        self.train_v, self.test_v = binarise(train).to(self.device), binarise(test).to(self.device)
        self.rng = torch.Generator(device=self.device).manual_seed(config["seed"])
        self.rbm = RBM(self.train_v.shape[1], config["hidden"], config["temperature"], self.rng, self.device)
        self.velocity = [torch.zeros_like(p) for p in (self.rbm.W, self.rbm.b, self.rbm.c)]
        self.chains = torch.zeros(config["batch_size"], self.rbm.visible, device=self.device)  # PCD's fantasy particles
        # p(h | chains) under the weights before the last update: the next round samples h from it, as
        # scikit-learn's BernoulliRBM does, so a PCD round costs no extra pass
        self.chain_hidden = None
        self.epochs = 0

    def train(self, epochs: int) -> dict:
        config, rbm = self.config, self.rbm
        start = time.perf_counter()
        with torch.no_grad():
            self._epochs(epochs)
        elapsed = time.perf_counter() - start
        if not all(torch.isfinite(p).all() for p in (rbm.W, rbm.b, rbm.c)):
            raise FloatingPointError(f"RBM weights are not finite after epoch {self.epochs}; lower lr "
                                     f"(now {config['lr']}) or momentum")
        return {"train/reconstruction_error": rbm.reconstruction_error(self.train_v),
                "train/examples_per_s": epochs * len(self.train_v) / max(elapsed, 1e-9), "train/epoch": self.epochs}

    def _epochs(self, epochs: int) -> None:
        config, rbm = self.config, self.rbm
        size, k, n = config["batch_size"], config["k"], len(self.train_v)
        for _ in range(epochs):
            shuffled = (self.train_v[torch.randperm(n, device=self.device, generator=self.rng)]
                        if config["shuffle"] else self.train_v)
            batches = -(-n // size)
            noise_h = torch.rand(batches, k, size, rbm.hidden, device=self.device, generator=self.rng)
            noise_v = torch.rand(batches, k, size, rbm.visible, device=self.device, generator=self.rng)
            for i in range(batches):
                batch = shuffled[i * size:(i + 1) * size]
                rows = len(batch)
                ph_data = rbm.hidden_probs(batch)
                if config["training"] == "pcd":
                    self.chains, self.chain_hidden = rbm.gibbs_with_hidden(self.chains, k, self.rng, self.chain_hidden,
                                                                           (noise_h[i], noise_v[i]))
                    negatives, ph_neg = self.chains[:rows], self.chain_hidden[:rows]
                else:
                    negatives, ph_neg = rbm.gibbs_with_hidden(batch, k, self.rng, ph_data,
                                                              (noise_h[i, :, :rows], noise_v[i, :, :rows]))
                self._update(rbm.gradient(batch, negatives, ph_data, ph_neg))
            self.epochs += 1

    def _update(self, grads: tuple[torch.Tensor, ...]) -> None:
        """velocity = momentum * velocity + lr * (gradient - weight_decay * W); parameter += velocity.
        Terms that are zero are skipped: with batches of 10 the step is bound by per-call overhead."""
        lr, momentum, decay = self.config["lr"], self.config["momentum"], self.config["weight_decay"]
        params = (self.rbm.W, self.rbm.b, self.rbm.c)
        for i, (param, velocity, grad) in enumerate(zip(params, self.velocity, grads)):
            if i == 0 and decay:
                grad.add_(param, alpha=-decay)
            if momentum:
                velocity.mul_(momentum).add_(grad, alpha=lr)
                param.add_(velocity)
            else:
                param.add_(grad, alpha=lr)

    def evaluate(self) -> dict:
        """Held-out scores: pseudo-log-likelihood (mean over every unit, per image), reconstruction error and
        the AIS estimate of the test log-likelihood with its 95% interval (the AIS estimate's own noise)."""
        rbm, test = self.rbm, self.test_v
        share = self.train_v.mean(0).clamp(1e-3, 1 - 1e-3)
        gen = torch.Generator(device=self.device).manual_seed(self.config["seed"] + 7)
        ais = ais_log_partition(rbm, torch.log(share / (1 - share)), default_betas(self.config["ais_steps"]),
                                self.config["ais_chains"], gen)
        unnormalised = float((-rbm.free_energy(test) / rbm.T).mean())
        return {"eval/pseudo_log_likelihood": float(rbm.pseudo_log_likelihood(test).mean()),
                "eval/reconstruction_error": rbm.reconstruction_error(test),
                "eval/log_likelihood": unnormalised - ais["log_z"],
                # a high log Z estimate gives a low likelihood, and the other way round
                "eval/log_likelihood_ci_low": unnormalised - ais["log_z_high"],
                "eval/log_likelihood_ci_high": unnormalised - ais["log_z_low"], "eval/log_z": ais["log_z"]}

    def sample(self, n: int, steps: int, seed: int) -> torch.Tensor:
        """n images from Gibbs chains started at random, after `steps` rounds: the visible probabilities of
        the last round, as (n, C, H, W) in [-1, 1]."""
        return sample_images(self.rbm, self.data.shape, n, steps, seed, self.device)

    def state_dict(self) -> dict:
        return {"rbm": self.rbm.state_dict(), "velocity": [v.cpu() for v in self.velocity],
                "chains": self.chains.cpu(), "epochs": self.epochs,
                "chain_hidden": None if self.chain_hidden is None else self.chain_hidden.cpu(),
                **generator_state(self.rng)}

    def load_state_dict(self, state: dict) -> None:
        self.rbm.load_state_dict(state["rbm"])
        self.velocity = [v.to(self.device) for v in state["velocity"]]
        self.chains = state["chains"].to(self.device)
        self.chain_hidden = None if state["chain_hidden"] is None else state["chain_hidden"].to(self.device)
        self.epochs = state["epochs"]
        load_generator_state(self.rng, state, fallback_seed=self.config["seed"] * 1_000_003 + self.epochs)

    def save(self, path: Path) -> None:
        torch.save(self.state_dict(), path)

    def load(self, path: Path) -> None:
        self.load_state_dict(torch.load(path, map_location=self.device, weights_only=False))


def sample_images(rbm: RBM, shape: tuple, n: int, steps: int, seed: int, device) -> torch.Tensor:
    gen = torch.Generator(device=device).manual_seed(seed)
    v = torch.bernoulli(torch.full((n, rbm.visible), 0.5, device=device), generator=gen)
    v = rbm.gibbs(v, max(steps - 1, 0), gen)
    probs = rbm.visible_probs(torch.bernoulli(rbm.hidden_probs(v), generator=gen))
    return (probs * 2 - 1).view(n, *shape).cpu()
