"""The GAN family: its losses against hand computations, mode coverage on known generators, a short training
run that beats the untrained generator, checkpoints that resume exactly, a conditional generator that draws
the class it is asked for, and the MLflow model."""

import math

import numpy as np
import pytest
import torch

from algorithms.data import load_digits
from algorithms.gan import FAMILY
from algorithms.gan.coverage import mode_scores, predict_classes
from algorithms.gan.losses import discriminator_loss, generator_loss, r1_penalty
from algorithms.gan.networks import Discriminator, Generator
from algorithms.gan.trainer import GANTrainer


@pytest.fixture(scope="module")
def digits():
    return load_digits()


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return str(tmp_path_factory.mktemp("fid-cache"))


def config(cache, **overrides):
    return {**FAMILY.resolve({"cache_dir": cache, "batch_size": 64, "eval_samples": 300, "coverage_samples": 500}),
            **overrides}


def test_networks_fit_every_data_set_size():
    for shape in [(1, 8, 8), (1, 28, 28), (3, 32, 32)]:
        for classes in (0, 10):
            g, d = Generator(shape, 16, 8, classes), Discriminator(shape, 8, classes)
            labels = torch.tensor([0, 9]) if classes else None
            images = g(torch.randn(2, 16), labels)
            assert images.shape == (2, *shape) and images.abs().max() <= 1
            assert d(images, labels).shape == (2,)


@pytest.mark.parametrize("kind", ["non_saturating", "minimax"])
def test_generator_gradient_matches_the_hand_computation(kind):
    """G(z) = w z and D(x) = a x + b, so d = a w z + b. For the non-saturating loss -mean log sigmoid(d),
    dL/dw = -mean((1 - sigmoid(d)) a z); for the minimax loss mean log(1 - sigmoid(d)), dL/dw = -mean(sigmoid(d) a z):
    it vanishes where D rejects the fake (sigmoid(d) near 0), which is why minimax saturates."""
    z = torch.tensor([0.5, -1.0, 2.0, 0.25], dtype=torch.float64)
    w = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    a, b = 1.5, -2.0
    d = a * w * z + b
    generator_loss(kind, d).backward()
    sigmoid = 1 / (1 + torch.exp(-(a * 0.7 * z + b)))
    by_hand = -((1 - sigmoid) if kind == "non_saturating" else sigmoid) * a * z
    assert w.grad.item() == pytest.approx(by_hand.mean().item(), rel=1e-12)


def test_minimax_saturates_where_non_saturating_does_not():
    confident_reject = torch.full((8,), -8.0, requires_grad=True)  # D(G(z)) = sigmoid(-8) = 3e-4
    grads = {}
    for kind in ("minimax", "non_saturating"):
        (grad,) = torch.autograd.grad(generator_loss(kind, confident_reject), confident_reject)
        grads[kind] = grad.abs().sum().item()
    assert grads["minimax"] < 1e-3 * grads["non_saturating"]


def test_discriminator_losses_at_known_logits():
    real, fake = torch.tensor([2.0, 0.0]), torch.tensor([-1.0, 3.0])
    softplus = lambda x: math.log1p(math.exp(x))  # noqa: E731
    expected = (softplus(-2.0) + softplus(0.0)) / 2 + (softplus(-1.0) + softplus(3.0)) / 2
    assert discriminator_loss("non_saturating", real, fake).item() == pytest.approx(expected, rel=1e-6)
    assert discriminator_loss("minimax", real, fake).item() == pytest.approx(expected, rel=1e-6)
    # hinge: mean(relu(1 - real)) + mean(relu(1 + fake)) = (0 + 1) / 2 + (0 + 4) / 2
    assert discriminator_loss("hinge", real, fake).item() == pytest.approx(2.5)
    assert generator_loss("hinge", fake).item() == pytest.approx(-1.0)


def test_r1_penalty_is_the_squared_gradient_norm():
    """For a linear D(x) = <v, x> + c the gradient is v everywhere, so R1 = ||v||^2."""

    class Linear(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.v = torch.nn.Parameter(torch.randn(1, 1, 8, 8))

        def forward(self, x, labels=None):
            return (x * self.v).flatten(1).sum(1) + 3.0

    d = Linear()
    assert r1_penalty(d, torch.randn(5, 1, 8, 8)).item() == pytest.approx(d.v.pow(2).sum().item(), rel=1e-5)


def test_mode_coverage_sees_a_collapsed_generator(tmp_path, digits, cache):
    trainer = GANTrainer(config(cache), data=digits)
    classifier = trainer.scorer.classifier
    labels = digits.labels.numpy()
    real = mode_scores(predict_classes(classifier, digits.images), labels, 10)
    assert real["mode_coverage"] == 1.0 and real["class_kl"] < 0.02
    threes = digits.images[digits.labels == 3]
    collapsed = threes[torch.randint(0, len(threes), (1000,), generator=torch.Generator().manual_seed(0))]
    scores = mode_scores(predict_classes(classifier, collapsed), labels, 10)
    assert scores["mode_coverage"] == pytest.approx(0.1, abs=0.1)  # one class, at most one stray beside it
    assert scores["class_kl"] == pytest.approx(math.log(10), abs=0.25)
    assert scores["class_kl_ci_low"] <= scores["class_kl"] <= scores["class_kl_ci_high"]


def test_short_training_beats_the_untrained_generator(digits, cache):
    torch.set_num_threads(2)
    trainer = GANTrainer(config(cache), data=digits)
    untrained = trainer.evaluate()
    trainer.train(400)
    trained = trainer.evaluate()
    assert trained["eval/fid"] < 0.1 * untrained["eval/fid"], (untrained["eval/fid"], trained["eval/fid"])
    assert trained["eval/fid_ci_high"] < untrained["eval/fid_ci_low"]
    assert trained["eval/mode_coverage"] > untrained["eval/mode_coverage"]
    assert trained["eval/class_kl"] < untrained["eval/class_kl"]


def test_checkpoint_resumes_exactly(tmp_path, digits, cache):
    cfg = config(cache, r1_gamma=1.0, d_steps=2, loss="hinge", width=8)
    a = GANTrainer(cfg, data=digits)
    a.train(5)
    a.save(tmp_path / "ckpt.pt")
    after = a.train(5)
    b = GANTrainer(cfg, data=digits)
    b.load(tmp_path / "ckpt.pt")
    assert b.train(5) == {**after, "train/images_per_s": pytest.approx(after["train/images_per_s"], rel=10)}
    for x, y in zip(a.ema.model.state_dict().values(), b.ema.model.state_dict().values()):
        assert torch.equal(x, y)


def test_conditional_generator_draws_the_class_it_is_asked_for(digits, cache):
    torch.set_num_threads(2)
    trainer = GANTrainer(config(cache, conditional=True), data=digits)
    trainer.train(600)
    labels = torch.arange(10).repeat_interleave(50)
    predicted = predict_classes(trainer.scorer.classifier, trainer.generate(len(labels), seed=5, labels=labels))
    accuracy = float((predicted == labels.numpy()).mean())
    assert accuracy > 0.5, f"the classifier finds the requested digit in {accuracy:.0%} of samples (chance 10%)"


def test_mlflow_model_draws_samples(tmp_path, digits, cache):
    import mlflow.pyfunc
    import pandas as pd

    trainer = GANTrainer(config(cache, conditional=True, width=8), data=digits)
    trainer.train(2)
    export = trainer_export(trainer, tmp_path)
    mlflow.pyfunc.save_model(str(tmp_path / "model"), python_model=export.model, artifacts=export.artifacts,
                             signature=export.signature)
    model = mlflow.pyfunc.load_model(str(tmp_path / "model"))
    images = model.predict(pd.DataFrame({"num_samples": [3, 2], "seed": [1, 1], "label": [4, 7]}))
    assert images.shape == (5, 1, 8, 8) and images.dtype == np.float32 and 0 <= images.min() <= images.max() <= 1
    again = model.predict(pd.DataFrame({"num_samples": [3], "seed": [1], "label": [4]}))
    np.testing.assert_array_equal(images[:3], again)
    z = torch.randn(3, trainer.config["latent_dim"], generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = (trainer.ema.model.eval()(z, torch.full((3,), 4)).clamp(-1, 1) + 1) / 2
    np.testing.assert_allclose(images[:3], expected.numpy(), atol=1e-6)  # the EMA generator's weights


def trainer_export(trainer, tmp_path):
    from algorithms.gan.serving import export

    return export(trainer, trainer.config, tmp_path)
