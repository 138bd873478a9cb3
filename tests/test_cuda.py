"""On a real CUDA GPU (skipped elsewhere; `bash bench/gpu_check.sh` runs it on a GPU node): the training
speed-ups on the device they are for, the training set resident on the GPU or streamed from pinned memory,
and checkpoints written on the GPU resumed on the CPU. The declared-GPU tests (test_gpu_placement,
test_multinode) cover Ray's side on any machine."""

import pytest
import torch

from algorithms.data import DeviceImages, load_digits
from algorithms.diffusion import FAMILY as DIFFUSION
from algorithms.diffusion.trainer import DiffusionTrainer

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

CUDA = torch.device("cuda")


def diffusion_config(tmp_path, **options):
    return DIFFUSION.resolve({"cache_dir": str(tmp_path / "cache"), "batch_size": 64, "base_channels": 16,
                              "timesteps": 100, "eval_samples": 100, "sample_steps": 10, "device": "cuda", **options})


@pytest.mark.parametrize("options", [{}, {"precision": "bf16"}, {"precision": "fp16"}, {"channels_last": True},
                                     {"compile": True}, {"precision": "bf16", "compile": True, "channels_last": True}],
                         ids=["fp32", "bf16", "fp16", "channels_last", "compile", "all"])
def test_diffusion_on_cuda_trains_round_trips_and_resumes_on_cpu(options, tmp_path):
    digits = load_digits()
    trainer = DiffusionTrainer(diffusion_config(tmp_path, **options), data=digits)
    assert trainer.device.type == "cuda" and trainer.images.resident and trainer.images.images.is_cuda
    first = trainer.train(5)["train/loss"]
    trainer.train(150)
    last = trainer.train(5)["train/loss"]
    assert last < 0.6 * first, (first, last)
    trainer.save(tmp_path / "ckpt.pt")
    expected = trainer.train(3)["train/loss"]
    resumed = DiffusionTrainer(diffusion_config(tmp_path, **options), data=digits)
    resumed.load(tmp_path / "ckpt.pt")
    assert resumed.train(3)["train/loss"] == pytest.approx(expected, rel=1e-3)
    on_cpu = DiffusionTrainer(diffusion_config(tmp_path, device="cpu"), data=digits)
    on_cpu.load(tmp_path / "ckpt.pt")
    assert on_cpu.train(2)["train/loss"] < first


def test_a_training_set_too_big_for_the_budget_streams_from_pinned_memory():
    images = torch.randn(1000, 1, 8, 8)
    streamed = DeviceImages(images, CUDA, budget=0.0)
    assert not streamed.resident and streamed.images.is_pinned()
    for _ in range(3):  # the staging buffer is reused only after its copy has finished
        idx = torch.randint(0, 1000, (64,), device=CUDA)
        batch = streamed.batch(idx)
        assert batch.is_cuda and torch.equal(batch.cpu(), images[idx.cpu()])
    resident = DeviceImages(images, CUDA)
    assert resident.resident and resident.images.is_cuda


def test_contrastive_on_cuda_with_bf16_and_channels_last_learns(tmp_path):
    from algorithms.contrastive import FAMILY
    from algorithms.contrastive.experiment import ContrastiveExperiment

    experiment = ContrastiveExperiment(FAMILY.resolve({"device": "cuda", "precision": "bf16", "channels_last": True,
                                                       "steps_per_iteration": 30, "iterations": 3}))
    first, last = experiment.step(), experiment.step()
    assert last["train/loss"] < first["train/loss"]
    experiment.save(tmp_path)
    expected = experiment.step()["train/loss"]
    resumed = ContrastiveExperiment(FAMILY.resolve({"device": "cuda", "precision": "bf16", "channels_last": True,
                                                    "steps_per_iteration": 30, "iterations": 3}))
    resumed.restore(tmp_path)
    assert resumed.step()["train/loss"] == pytest.approx(expected, rel=1e-2)


def test_rl_learner_trains_on_the_gpu():
    pytest.importorskip("ray.rllib")
    from algorithms.rl import FAMILY
    from algorithms.rl.experiment import RLExperiment

    experiment = RLExperiment(FAMILY.resolve({"env_steps_per_iteration": 1000, "learning_starts": 500}))
    try:
        assert experiment.device.type == "cuda"
        learner = experiment.algo.learner_group._learner.module["default_policy"]
        assert all(p.is_cuda for p in learner.parameters())
        before = {k: v.detach().clone() for k, v in learner.state_dict().items()}
        metrics = experiment.step()
        assert metrics["env_steps"] >= 1000 and 0 < metrics["train/td_loss"] < float("inf")
        moved = [k for k, v in learner.state_dict().items() if not torch.equal(v, before[k])]
        assert moved, "the Learner's gradient steps changed its weights on the GPU"  # an idle learner fails here
    finally:
        experiment.close()
