"""Where a model runs and in which number format: one rule for every encoder."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch

from mmsearch.encoders.base import Encoder
from mmsearch.errors import MMSearchError

Precision = Literal["auto", "fp32", "fp16", "bf16"]
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "fp16", "bf16")
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda", "mps")


class BadDeviceSetting(MMSearchError):
    pass


def pick_device(device: str) -> torch.device:
    """'auto' -> cuda, then mps, then cpu. 'cuda:1' and the like pass through."""
    if device != "auto":
        if device.split(":")[0] not in DEVICES[1:]:
            raise BadDeviceSetting(f"unknown device {device!r}; use one of {', '.join(DEVICES)}")
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def pick_dtype(device: torch.device, precision: str) -> torch.dtype:
    """'auto': fp16 on a GPU (bf16 where the card has it), fp32 on a CPU.

    Half precision on a CPU is refused rather than quietly slow: most CPU kernels have no fp16 path,
    and bf16 on CPUs without AMX runs slower than fp32.
    """
    if precision not in PRECISIONS:
        raise BadDeviceSetting(f"unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}")
    gpu = device.type in ("cuda", "mps")
    if precision == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float16 if gpu else torch.float32
    if precision != "fp32" and not gpu:
        raise BadDeviceSetting(
            f"precision {precision} needs a GPU (cuda or mps), but the model runs on {device.type}; "
            f"use --precision fp32 (or auto) on a CPU"
        )
    return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]


class HubEncoder(Encoder):
    """Set-up shared by encoders loaded by repo id or local folder: where to look for the weights, and
    where and in which format to run them. Subclasses add what is particular to their model."""

    def __init__(self, model: str, models_dir: str | Path, cache_dir: str | None, offline: bool, device: str,
                 precision: str = "fp32") -> None:
        super().__init__()
        self.model_name = model
        self.models_dir = Path(models_dir)
        self.cache_dir = cache_dir
        self.offline = offline
        self.device = pick_device(device)
        self.dtype = pick_dtype(self.device, precision)
