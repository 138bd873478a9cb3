"""What GPU users expect to switch on, as sweepable parameters of the image families
(declared in `algorithms.shared_params.SPEEDUP_PARAMS`): mixed precision
(autocast, with a GradScaler for fp16), `torch.compile` and channels-last memory format.

Only training uses them. Evaluation (FID, kNN, linear probe) and sampling for it stay in fp32, so an
eval metric means the same thing whatever precision a trial trained in and two trials can be compared.
Checkpoints hold the plain module's weights (the module is compiled in place, so its state-dict keys do
not change) plus the scaler's state: a checkpoint moves between trials with and without these options.
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}  # the `precision` parameter


class MixedPrecision:
    """Autocast for the forward pass and the backward/step that goes with it. fp16 scales the loss
    (a GradScaler, on CUDA and on CPU) so small gradients do not underflow; bf16 has fp32's range and
    needs none. fp32 is a plain backward and step."""

    def __init__(self, precision: str, device: torch.device):
        self.dtype = PRECISIONS[precision]
        self.device_type = device.type
        self.scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")

    def autocast(self):
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def backward_and_step(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer,
                          clip_norm: float | None = None) -> None:
        """backward, optional clipping of the true (unscaled) gradients by global norm, step."""
        self.scaler.scale(loss).backward()
        if clip_norm is not None:
            self.scaler.unscale_(optimizer)
            params = [p for group in optimizer.param_groups for p in group["params"]]
            nn.utils.clip_grad_norm_(params, clip_norm)
        self.scaler.step(optimizer)  # skipped when the scaled gradients overflowed (fp16)
        self.scaler.update()

    def state_dict(self) -> dict:
        return self.scaler.state_dict()

    def load_state_dict(self, state: dict) -> None:
        if state:  # an fp32 trial's scaler has no state; a trial resumed with another precision starts afresh
            self.scaler.load_state_dict(state)


def set_channels_last(module: nn.Module, config: dict) -> nn.Module:
    """Parameters in channels-last format when the trial asks for it (a copy made afterwards keeps it)."""
    return module.to(memory_format=torch.channels_last) if config.get("channels_last") else module


def compile_in_place(module: nn.Module, config: dict) -> nn.Module:
    """torch.compile on the module's own forward: parameter names, and so checkpoints, do not change."""
    if config.get("compile"):
        module.compile()
    return module


def to_memory_format(x: torch.Tensor, config: dict) -> torch.Tensor:
    """A batch of images in the network's memory format."""
    return x.contiguous(memory_format=torch.channels_last) if config.get("channels_last") and x.ndim == 4 else x
