"""The energy family: the RBM's free energy, CD-k gradient and AIS against brute force on models small enough
to enumerate, its pseudo-likelihood against scikit-learn's, training that beats the untrained model, and
Hopfield recall below and above capacity, with an energy that never rises."""

import numpy as np
import pytest
import torch

from algorithms.data import load_digits
from algorithms.hopfield import FAMILY as HOPFIELD
from algorithms.hopfield.network import Hopfield, corrupt, recall_scores
from algorithms.rbm import FAMILY
from algorithms.rbm.model import RBM, ais_log_partition, all_states, default_betas, log_partition_exact
from algorithms.rbm.trainer import RBMTrainer, binarise


def small_rbm(visible=4, hidden=3, temperature=1.0, scale=1.0, seed=0) -> RBM:
    gen = torch.Generator().manual_seed(seed)
    rbm = RBM(visible, hidden, temperature, dtype=torch.float64)
    rbm.W = scale * torch.randn(visible, hidden, generator=gen, dtype=torch.float64)
    rbm.b = 0.5 * torch.randn(visible, generator=gen, dtype=torch.float64)
    rbm.c = 0.5 * torch.randn(hidden, generator=gen, dtype=torch.float64)
    return rbm


def joint(rbm: RBM):
    """Every (v, h) state and its probability under p(v, h) = exp(-E(v, h) / T) / Z."""
    v, h = all_states(rbm.visible, rbm.W), all_states(rbm.hidden, rbm.W)
    energy = -(v @ rbm.b)[:, None] - (h @ rbm.c)[None, :] - v @ rbm.W @ h.T
    p = torch.softmax((-energy / rbm.T).flatten(), 0).view(energy.shape)
    return v, h, energy, p


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_free_energy_matches_the_sum_over_hidden_states(temperature):
    rbm = small_rbm(temperature=temperature)
    v, h, energy, p = joint(rbm)
    brute = -temperature * torch.logsumexp(-energy / temperature, dim=1)
    torch.testing.assert_close(rbm.free_energy(v), brute)
    assert log_partition_exact(rbm) == pytest.approx(float(torch.logsumexp((-energy / temperature).flatten(), 0)))


def exact_cd_gradient(rbm: RBM, v0: torch.Tensor, k: int) -> torch.Tensor:
    """E[CD-k's dW] from v0, by enumeration: the chain's k-step distribution over visible states is
    row(v0) of T^k, T(v'|v) = sum_h p(h|v) p(v'|h)."""
    v, h = all_states(rbm.visible, rbm.W), all_states(rbm.hidden, rbm.W)
    ph = rbm.hidden_probs(v)  # (V, H) per-unit probabilities
    p_h_given_v = torch.prod(torch.where(h[None].bool(), ph[:, None], 1 - ph[:, None]), dim=2)  # (V, 2^H)
    pv = rbm.visible_probs(h)
    p_v_given_h = torch.prod(torch.where(v[None].bool(), pv[:, None], 1 - pv[:, None]), dim=2)  # (2^H, V)
    step = p_h_given_v @ p_v_given_h
    start = (v == v0).all(1).double()
    reach = start @ torch.linalg.matrix_power(step, k)
    negative = (reach[:, None, None] * (v[:, :, None] * ph[:, None, :])).sum(0)
    return (v0[:, None] * rbm.hidden_probs(v0)[None, :] - negative) / rbm.T


@pytest.mark.parametrize("k", [1, 3])
def test_cd_k_gradient_matches_its_expectation_by_enumeration(k):
    rbm = small_rbm(temperature=0.8)
    v0 = torch.tensor([1.0, 0.0, 1.0, 1.0], dtype=torch.float64)
    data = v0.repeat(40_000, 1)
    dW, _, _ = rbm.gradient(data, rbm.gibbs(data, k, torch.Generator().manual_seed(1)))
    torch.testing.assert_close(dW, exact_cd_gradient(rbm, v0, k), atol=0.01, rtol=0)


def test_long_chains_give_the_exact_log_likelihood_gradient():
    rbm = small_rbm()
    v, h, _, p = joint(rbm)
    v0 = torch.tensor([0.0, 1.0, 1.0, 0.0], dtype=torch.float64)
    model_stat = torch.einsum("vh,vi,hj->ij", p, v, h)  # E_model[v h^T]
    exact = v0[:, None] * rbm.hidden_probs(v0)[None, :] - model_stat
    torch.testing.assert_close(exact_cd_gradient(rbm, v0, 200), exact, atol=1e-9, rtol=0)


def test_ais_finds_the_exact_partition_function():
    rbm = small_rbm(visible=12, hidden=8, scale=0.7, seed=3)
    exact = log_partition_exact(rbm)
    ais = ais_log_partition(rbm, torch.zeros(12, dtype=torch.float64), default_betas(1000), 200,
                            torch.Generator().manual_seed(0))
    assert ais["log_z"] == pytest.approx(exact, abs=0.05)
    assert ais["log_z_low"] <= exact <= ais["log_z_high"]


def test_pseudo_likelihood_is_scikit_learns_on_the_same_weights():
    from sklearn.neural_network import BernoulliRBM

    rbm = small_rbm(visible=64, hidden=16, scale=0.3, seed=5)
    v = (torch.rand(50, 64, generator=torch.Generator().manual_seed(2)) < 0.4).double()
    theirs = BernoulliRBM(n_components=16, random_state=7)
    theirs.components_, theirs.intercept_hidden_ = rbm.W.T.numpy(), rbm.c.numpy()
    theirs.intercept_visible_ = rbm.b.numpy()
    # scikit-learn flips one unit per row, drawn like this from its random_state
    units = torch.as_tensor(np.random.RandomState(7).randint(0, 64, 50))
    np.testing.assert_allclose(rbm.pseudo_log_likelihood(v, units).numpy(), theirs.score_samples(v.numpy()),
                               rtol=1e-10)
    # without units: the mean over every unit, the expectation of scikit-learn's one-unit estimate
    all_units = torch.stack([rbm.pseudo_log_likelihood(v, torch.full((50,), i)) for i in range(64)]).mean(0)
    torch.testing.assert_close(rbm.pseudo_log_likelihood(v), all_units)


@pytest.fixture(scope="module")
def digits():
    return load_digits()


@pytest.mark.parametrize("training", ["cd", "pcd"])
def test_training_beats_the_untrained_rbm(digits, training):
    config = FAMILY.resolve({"training": training, "ais_steps": 500, "ais_chains": 50})
    trainer = RBMTrainer(config, data=digits)
    untrained = trainer.evaluate()
    trainer.train(5)
    trained = trainer.evaluate()
    assert trained["eval/pseudo_log_likelihood"] > untrained["eval/pseudo_log_likelihood"] + 15
    assert trained["eval/log_likelihood_ci_low"] > untrained["eval/log_likelihood_ci_high"]
    assert trained["eval/reconstruction_error"] < 0.5 * untrained["eval/reconstruction_error"]
    assert binarise(digits).shape == (len(digits.labels), 64)


def test_rbm_checkpoint_resumes_exactly(tmp_path, digits):
    config = FAMILY.resolve({"training": "pcd", "k": 2, "epochs_per_iteration": 1})
    a = RBMTrainer(config, data=digits)
    a.train(1)
    a.save(tmp_path / "rbm.pt")
    a.train(1)
    b = RBMTrainer(config, data=digits)
    b.load(tmp_path / "rbm.pt")
    b.train(1)
    torch.testing.assert_close(a.rbm.W, b.rbm.W, rtol=0, atol=0)


def random_patterns(count: int, units: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 2, (count, units), generator=torch.Generator().manual_seed(seed)).float() * 2 - 1


def recall(patterns: torch.Tensor, rule="hebbian", update="async", fraction=0.1) -> dict:
    gen = torch.Generator().manual_seed(1)
    net = Hopfield(patterns, rule)
    run = net.recall(corrupt(patterns, fraction, gen), update, 0.0, 50, gen)
    return recall_scores(run["states"], patterns)


def test_hopfield_recalls_below_capacity_and_fails_well_above_it():
    n = 300
    below = recall(random_patterns(round(0.05 * n), n))
    above = recall(random_patterns(round(0.3 * n), n))
    assert below["recall_accuracy"] == 1.0
    assert above["recall_accuracy"] < 0.1 and above["recall_overlap"] < 0.7, above


def test_modern_hopfield_stores_far_more_than_hebbian():
    patterns = random_patterns(60, 100)  # load 0.6, over four times the classical capacity
    assert recall(patterns, rule="modern")["recall_accuracy"] == 1.0
    assert recall(patterns)["recall_accuracy"] < 0.1


def test_energy_never_rises_under_asynchronous_updates_at_zero_temperature():
    patterns = random_patterns(30, 100)  # beyond capacity, so trajectories wander into spurious minima
    net = Hopfield(patterns)
    gen = torch.Generator().manual_seed(3)
    run = net.recall(corrupt(patterns, 0.3, gen), "async", 0.0, 20, gen, trace_updates=True)
    steps = run["energies"].diff(dim=0)
    # never up (beyond float32 rounding at the energies' scale: |E| ~ 100 makes one unit in the last place
    # about 1e-5, and an actual rise is at least 1e-2), and it did go down
    rounding = 1e-6 * run["energies"].abs().max()
    assert steps.max() <= rounding and steps.min() < -1, (steps.max(), rounding)
    assert run["energies"].shape[0] > 100 * 2  # one entry per unit update, over at least two sweeps


def test_energy_models_are_mlflow_models(tmp_path, digits):
    import mlflow.pyfunc
    import pandas as pd

    from algorithms.hopfield.experiment import HopfieldExperiment
    from algorithms.hopfield.serving import export as export_hopfield
    from algorithms.rbm.serving import export as export_rbm

    trainer = RBMTrainer(FAMILY.resolve({"hidden": 16}), data=digits)
    trainer.train(1)
    hopfield = HopfieldExperiment(HOPFIELD.resolve({"load": 0.05}))
    (tmp_path / "rbm-files").mkdir()
    (tmp_path / "hopfield-files").mkdir()
    for name, export in (("rbm", export_rbm(trainer, trainer.config, tmp_path / "rbm-files")),
                         ("hopfield", export_hopfield(hopfield.network, hopfield.shape, hopfield.config,
                                                      tmp_path / "hopfield-files"))):
        mlflow.pyfunc.save_model(str(tmp_path / name), python_model=export.model, artifacts=export.artifacts,
                                 signature=export.signature, input_example=export.input_example)
    samples = mlflow.pyfunc.load_model(str(tmp_path / "rbm")).predict(pd.DataFrame({"num_samples": [5],
                                                                                    "gibbs_steps": [3]}))
    assert samples.shape == (5, 1, 8, 8) and 0 <= samples.min() <= samples.max() <= 1
    recalled = mlflow.pyfunc.load_model(str(tmp_path / "hopfield")).predict(pd.DataFrame({"num_probes": [3]}))
    assert recalled.shape == (3, 3, 64)
    assert (recalled[:, 1] != recalled[:, 0]).sum(1).tolist() == [round(0.1 * 64)] * 3  # the probes' flips
    # three digits, correlated patterns: most pixels come back (the flips were 10%), not always all
    assert float((recalled[:, 2] == recalled[:, 0]).mean()) > 0.95
