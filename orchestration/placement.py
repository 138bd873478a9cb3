"""Where a trial trains, checked against what Ray gave it.

A node that advertises a GPU torch cannot use (a broken driver, a CPU-only torch wheel) would otherwise
train on the CPU at a hundredth of the speed without a word, so `enforce_gpu_policy` stops such a trial
unless the sweep allows a CPU fallback. Each run records its placement as tags.
"""

from __future__ import annotations

import os

import torch

from algorithms.device import ray_gpu_share


class GPUUnusable(RuntimeError):
    """Ray gave this trial a GPU that torch cannot use."""


def gpu_placement() -> dict[str, str]:
    """What Ray assigned to this process and what torch sees, as run tags."""
    import ray

    ids = [str(i) for i in ray.get_gpu_ids()]
    return {"device.ray_gpu_ids": ",".join(ids) or "none", "device.ray_gpu_share": f"{ray_gpu_share():g}",
            "device.cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES", "(unset)"),
            "device.torch_cuda_devices": str(torch.cuda.device_count() if torch.cuda.is_available() else 0)}


def enforce_gpu_policy(placement: dict[str, str], allow_cpu_fallback: bool) -> dict[str, str]:
    """Raise GPUUnusable, in one line naming the node, when Ray gave a GPU that torch cannot see, unless
    `allow_cpu_fallback`: then the tags to add say that this trial fell back to the CPU."""
    import ray

    ids = placement["device.ray_gpu_ids"]
    if ids == "none" or torch.cuda.is_available():
        return {}
    if allow_cpu_fallback:
        return {"device.cpu_fallback": "true"}
    node = f"{ray.util.get_node_ip_address()} (node {ray.get_runtime_context().get_node_id()[:12]})"
    raise GPUUnusable(
        f"node {node} gave this trial GPU {ids} but torch {torch.__version__} sees no CUDA device "
        f"(CUDA_VISIBLE_DEVICES={placement['device.cuda_visible_devices']}, torch built for CUDA "
        f"{torch.version.cuda or 'none'}); fix the node's driver or torch, or allow CPU training with --cpu-fallback")


def describe_device(device: torch.device) -> str:
    """'cuda:0 (NVIDIA H100 80GB HBM3)' or 'cpu'."""
    if device.type != "cuda":
        return str(device)
    index = device.index if device.index is not None else torch.cuda.current_device()
    return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
