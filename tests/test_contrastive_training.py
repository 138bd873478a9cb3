"""Short self-supervised runs on digits, each scored against its own randomly initialised encoder on the
same 359 held-out images, which the encoder never trains on (the random encoder already reaches
0.93-0.96 kNN and 0.95-0.97 probe accuracy there): SimCLR beats it on both scores, every method beats it
on the linear probe. The two scores are paired (same images, same fitted-on set), so a gain of a few
images is a real one."""

import pytest
import torch

from algorithms.contrastive import FAMILY
from algorithms.contrastive.experiment import ContrastiveExperiment


def config(**overrides):
    return FAMILY.resolve({"steps_per_iteration": 50, "iterations": 3, **overrides})


def test_simclr_beats_the_random_encoder_on_digits():
    torch.set_num_threads(2)
    experiment = ContrastiveExperiment(config(method="simclr", temperature=0.2))
    baseline = experiment.describe()
    for _ in range(3):
        metrics = experiment.step()
    assert metrics["train/loss"] < experiment.history[0]["train/loss"]
    assert metrics["eval/knn_acc"] > baseline["baseline/knn_acc_random_encoder"] + 0.015, (metrics, baseline)
    assert metrics["eval/linear_acc"] > baseline["baseline/linear_acc_random_encoder"] + 0.01, (metrics, baseline)
    # raw-pixel kNN is a strong baseline on 8x8 digits (about 98%); it is logged, not required to be beaten
    assert 0.9 < baseline["baseline/knn_acc_pixels"] <= 1.0


@pytest.mark.parametrize("method", ["moco_v1", "moco_v2", "byol", "simsiam"])
def test_every_method_beats_its_random_encoder(method):
    """150 steps of batch 128. Over seeds 0-2 the probe gained 4-14 of the 359 held-out images on the random
    encoder for every method (7-12 at seed 0, the one tested); kNN of BYOL and SimSiam still trails it on
    some seeds this early, so it is not asserted."""
    torch.set_num_threads(2)
    experiment = ContrastiveExperiment(config(method=method, steps_per_iteration=50, batch_size=128, queue_size=256))
    baseline = experiment.describe()
    first = experiment.step()
    for _ in range(2):
        last = experiment.step()
    assert last["train/loss"] < first["train/loss"]
    assert last["train/embedding_std"] > 0.01, "the embedding collapsed to a point"
    gained = round((last["eval/linear_acc"] - baseline["baseline/linear_acc_random_encoder"]) * last["eval/eval_items"])
    assert last["eval/eval_items"] == 359 and gained >= 4, (last, baseline)
    if method == "byol":
        assert first["train/tau"] < last["train/tau"] == pytest.approx(1.0)  # the cosine schedule rises to 1


def test_checkpoint_round_trip_reproduces_training(tmp_path):
    a = ContrastiveExperiment(config(steps_per_iteration=3, batch_size=32, method="moco_v2", queue_size=64))
    a.step()
    a.save(tmp_path)
    expected = a.step()["train/loss"]
    b = ContrastiveExperiment(config(steps_per_iteration=3, batch_size=32, method="moco_v2", queue_size=64))
    b.restore(tmp_path)
    assert b.step()["train/loss"] == pytest.approx(expected, rel=1e-5)
