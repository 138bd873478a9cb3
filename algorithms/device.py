"""Devices: which one an experiment trains on, and the GPU share Ray gave its process. Ray assigns GPUs
as a resource and sets CUDA_VISIBLE_DEVICES for the trial's process; torch then sees the card (or a
share of it) as cuda:0. Whether that placement works is the orchestration's check
(`orchestration.placement`)."""

from __future__ import annotations

import torch


def select_device(prefer: str = "auto") -> torch.device:
    """'auto' picks cuda when available; 'cpu' / 'cuda' force a device."""
    if prefer == "cpu":
        return torch.device("cpu")
    if prefer == "cuda" or (prefer == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise RuntimeError("device 'cuda' was requested but no CUDA GPU is visible")
        return torch.device("cuda")
    return torch.device("cpu")


def ray_gpu_share() -> float:
    """The GPUs (a fraction when shared) Ray assigned to this process; 0 outside a Ray worker."""
    import ray

    if not ray.is_initialized():
        return 0.0
    return float(ray.get_runtime_context().get_assigned_resources().get("GPU", 0.0))


def generator_state(generator: torch.Generator) -> dict:
    """A random generator's state for a checkpoint, with the device type it belongs to."""
    return {"generator": generator.get_state(), "generator_device": generator.device.type}


def load_generator_state(generator: torch.Generator, state: dict, fallback_seed: int) -> None:
    """Restore what `generator_state` saved. A CUDA generator's state means nothing to a CPU one (a GPU trial
    resumed on a CPU node), so across device types the generator is reseeded with `fallback_seed` instead."""
    if state.get("generator_device", "cpu") == generator.device.type:  # its state is a CPU tensor on any device
        generator.set_state(state["generator"].cpu())
    else:
        generator.manual_seed(fallback_seed)
