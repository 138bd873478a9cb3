"""Short DDPM training on digits: the loss falls, samples beat the untrained model, runs reproduce."""

import pytest
import torch

from algorithms.data import load_digits
from algorithms.diffusion import FAMILY
from algorithms.diffusion.unet import UNet
from algorithms.ema import EMA
from algorithms.diffusion.trainer import DiffusionTrainer


def config(tmp_path, **overrides):
    base = FAMILY.resolve({"cache_dir": str(tmp_path / "cache"), "batch_size": 64, "eval_samples": 300,
                           "sample_steps": 20, "schedule": "cosine", "timesteps": 200})
    return {**base, **overrides}


@pytest.fixture(scope="module")
def digits():
    return load_digits()


def test_unet_shapes_for_every_data_set_size():
    for shape, mults in [((1, 8, 8), (1, 2)), ((1, 28, 28), (1, 2, 2)), ((3, 32, 32), (1, 2, 2))]:
        model = UNet(in_channels=shape[0], base_channels=8, channel_mults=mults, attention_levels=(1,))
        x = torch.randn(2, *shape)
        assert model(x, torch.tensor([0, 99])).shape == x.shape


def test_ema_tracks_the_weights():
    model = torch.nn.Linear(1, 1, bias=False)
    ema = EMA(model, decay=0.9)
    with torch.no_grad():
        model.weight.fill_(1.0)
        ema.model.weight.fill_(0.0)
    for _ in range(200):
        ema.update(model)
    assert ema.model.weight.item() == pytest.approx(1.0, abs=1e-6)


def test_short_training_lowers_loss_and_fid(tmp_path, digits):
    torch.set_num_threads(2)
    trainer = DiffusionTrainer(config(tmp_path), data=digits)
    untrained_fid = trainer.evaluate()["eval/fid"]
    first = trainer.train(30)["train/loss"]
    trainer.train(300)
    last = trainer.train(30)["train/loss"]
    trained_fid = trainer.evaluate()["eval/fid"]
    assert last < 0.6 * first, (first, last)
    assert trained_fid < 0.5 * untrained_fid, (untrained_fid, trained_fid)
    assert trainer.scorer.test_accuracy > 0.9, "the FID feature classifier must recognise digits"


def test_same_seed_reproduces_and_checkpoint_resumes(tmp_path, digits):
    cfg = config(tmp_path, base_channels=8)
    a, b = DiffusionTrainer(cfg, data=digits), DiffusionTrainer(cfg, data=digits)
    assert a.train(5)["train/loss"] == b.train(5)["train/loss"]

    a.save(tmp_path / "ckpt.pt")
    expected = a.train(5)["train/loss"]
    restored = DiffusionTrainer(cfg, data=digits)
    restored.load(tmp_path / "ckpt.pt")
    assert restored.step == 5
    assert restored.train(5)["train/loss"] == pytest.approx(expected, rel=1e-6)


def test_a_checkpoint_from_a_gpu_trial_resumes_on_a_cpu_node(tmp_path, digits):
    """A CUDA generator's state (16 bytes) cannot seed a CPU generator; found on an H100 by bench/gpu.py.
    The weights and step carry over; the data order is reseeded from the seed and the step."""
    cfg = config(tmp_path, base_channels=8)
    trainer = DiffusionTrainer(cfg, data=digits)
    trainer.train(3)
    state = trainer.state_dict()
    state.update(generator=torch.zeros(16, dtype=torch.uint8), generator_device="cuda")  # as a GPU trial saves it
    torch.save(state, tmp_path / "gpu.pt")
    resumed = [DiffusionTrainer(cfg, data=digits) for _ in range(2)]
    for other in resumed:
        other.load(tmp_path / "gpu.pt")
    assert resumed[0].step == 3
    assert all(torch.equal(p, q) for p, q in zip(resumed[0].model.parameters(), trainer.model.parameters()))
    assert resumed[0].train(2)["train/loss"] == resumed[1].train(2)["train/loss"], "reseeded the same way"


@pytest.mark.parametrize("prediction,weighting", [("x0", "uniform"), ("v", "min_snr")])
def test_other_targets_and_weightings_train(tmp_path, digits, prediction, weighting):
    trainer = DiffusionTrainer(config(tmp_path, prediction=prediction, loss_weighting=weighting,
                                      zero_terminal_snr=prediction == "v", base_channels=8), data=digits)
    untrained_fid = trainer.evaluate()["eval/fid"]
    first = trainer.train(20)["train/loss"]
    trainer.train(100)
    assert trainer.train(20)["train/loss"] < first
    assert torch.isfinite(trainer.generate(16)).all()
    # 140 steps cut FID to 0.05-0.51 of the untrained model's on seeds 0-1 (x0: 1092 -> 54, v: 158 -> 81)
    assert trainer.evaluate()["eval/fid"] < 0.7 * untrained_fid


def test_divergence_fails_fast_with_a_clear_error(tmp_path, digits):
    trainer = DiffusionTrainer(config(tmp_path, lr=1.0, base_channels=8, grad_clip=1e9), data=digits)
    with torch.no_grad():
        next(trainer.model.parameters()).fill_(float("nan"))
    with pytest.raises(FloatingPointError, match="training loss is nan at step 0; lower lr"):
        trainer.train(5)


def test_the_mlflow_model_samples_what_the_trainer_samples(tmp_path, digits):
    """Logged through the sweep's own path into a SQLite store and loaded back: the pyfunc draws the
    trainer's own samples for a seed, in [0, 1]."""
    import mlflow.pyfunc
    import pandas as pd

    from orchestration.models import log_model
    from orchestration.tracking import _client

    cfg = config(tmp_path, steps_per_iteration=5, base_channels=8, sample_steps=4)
    trainer = DiffusionTrainer(cfg, data=digits)
    trainer.train(5)
    client = _client(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment_id = client.create_experiment("models", artifact_location=str(tmp_path / "artifacts"))
    run_id = client.create_run(experiment_id).info.run_id
    from algorithms.diffusion.serving import export

    uri = log_model(client, experiment_id, run_id, export(trainer, cfg, tmp_path), "diffusion", step=1)
    assert client.get_run(run_id).data.tags["sweep.model_uri"] == uri
    from mlflow.tracking._tracking_service.utils import _use_tracking_uri

    with _use_tracking_uri(client.tracking_uri):
        model = mlflow.pyfunc.load_model(uri)
    images = model.predict(pd.DataFrame({"num_samples": [6], "seed": [7]}))
    assert images.shape == (6, 1, 8, 8) and images.min() >= 0 and images.max() <= 1
    assert torch.allclose(torch.as_tensor(images) * 2 - 1, trainer.generate(6, seed=7), atol=1e-5)
    assert model.metadata.metadata["family"] == "diffusion"
