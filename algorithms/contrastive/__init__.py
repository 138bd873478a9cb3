"""Self-supervised representation learning: SimCLR, MoCo v1/v2, BYOL, SimSiam (+ pair/triplet/N-pair losses)."""

from __future__ import annotations

from algorithms.contrastive.methods import METHODS
from algorithms.contrastive.networks import ENCODERS
from algorithms.shared_params import DATA_PARAMS, SPEEDUP_PARAMS, check_data
from orchestration.family import Family
from orchestration.params import Bool, Choice, Float, Int

LOSSES = ("nt_xent", "contrastive", "triplet", "n_pair")

PARAMS = {
    **DATA_PARAMS,
    **SPEEDUP_PARAMS,
    "method": Choice("simclr", "self-supervised method", choices=METHODS),
    "loss": Choice("nt_xent", "SimCLR's loss: NT-Xent or a pair/triplet/N-pair alternative", choices=LOSSES),
    "temperature": Float(0.2, "softmax temperature of NT-Xent / InfoNCE", low=0, low_open=True),
    "margin": Float(0.5, "margin of the contrastive pair and triplet losses", low=0, low_open=True),
    "momentum": Float(0.99, "MoCo key-encoder momentum m / BYOL target decay tau", low=0.0, high=1.0,
                      high_open=True),
    "cosine_momentum": Bool(True, "BYOL: raise tau from its base to 1 on a cosine schedule"),
    "queue_size": Int(1024, "MoCo: number of queued negative keys K", low=1),
    "bn_groups": Int(4, "MoCo: equal sub-batches with BatchNorm statistics of their own; keys are shuffled "
                        "across them (shuffling BN), so at least 2", low=1),
    "encoder": Choice("cnn", "cnn (small, CPU) or resnet18 (CIFAR stem, GPU)", choices=ENCODERS),
    "width": Int(32, "channels of the small CNN's first layer", low=4),
    "feature_dim": Int(128, "representation size of the small CNN", low=2),
    "projection_dim": Int(64, "output of the projection head", low=2),
    "hidden_dim": Int(256, "hidden size of projection / prediction heads", low=2),
    "augmentation": Choice("weak", "view augmentation strength (moco_v2 is always strong)",
                           choices=("weak", "strong")),
    "lr": Float(2e-3, "AdamW learning rate", low=0, low_open=True, high=1.0),
    "weight_decay": Float(1e-5, low=0.0),
    "batch_size": Int(256, low=2),
    "steps_per_iteration": Int(50, "optimizer steps per Tune iteration", low=1),
    "iterations": Int(10, "Tune iterations (each ends with kNN and linear-probe evaluation)", low=1),
    "knn_k": Int(20, "neighbours in the weighted kNN", low=1),
}


def check_config(config: dict) -> str | None:
    if config["method"] in ("moco_v1", "moco_v2") and config["queue_size"] < config["batch_size"]:
        return (f"queue_size ({config['queue_size']}) must be at least batch_size ({config['batch_size']}) "
                "so a batch of keys fits the queue")
    if config["method"] in ("moco_v1", "moco_v2"):
        groups, batch = config["bn_groups"], config["batch_size"]
        if groups < 2:
            return (f"bn_groups {groups} would turn MoCo's shuffling BN off (a key would share BatchNorm statistics "
                    "with its query, which leaks the positive); use bn_groups >= 2")
        if batch % groups or batch < 2 * groups:
            return (f"batch_size ({batch}) must be a multiple of bn_groups ({groups}) with at least 2 samples per "
                    "group, so every BatchNorm sub-batch has the same size")
    if config["loss"] != "nt_xent" and config["method"] != "simclr":
        return f"loss {config['loss']} only applies to method simclr"
    return check_data(config)


FAMILY = Family(
    name="contrastive",
    experiment="algorithms.contrastive.experiment:ContrastiveExperiment",
    params=PARAMS,
    metrics=("eval/knn_acc", "eval/linear_acc", "train/loss"),
    default_metric="eval/knn_acc",
    default_mode="max",
    smoke={"iterations": 2, "steps_per_iteration": 3, "batch_size": 32, "queue_size": 64},
    gpu_fraction=0.25,
    check_config=check_config,
    use="algorithms.contrastive.serving:use",
    mutable=("lr", "weight_decay", "temperature", "momentum"),
)
