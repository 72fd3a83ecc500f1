"""Where a model runs and in which number format: one rule for every encoder."""

from __future__ import annotations

from typing import Literal

import torch

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
