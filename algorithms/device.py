"""Device selection shared by every family: CUDA when a GPU is visible, else CPU."""

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
