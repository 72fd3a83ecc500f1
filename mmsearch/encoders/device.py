"""Where a model runs and in which number format: one rule for every encoder.

torch is imported when a device is first resolved, not when an encoder is built: building one only to learn
its embedding space (an unchanged re-run) must not pay torch's 5-15 s import.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from mmsearch.encoders.base import Encoder
from mmsearch.errors import MMSearchError

if TYPE_CHECKING:
    import torch

Precision = Literal["auto", "fp32", "fp16", "bf16"]
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "fp16", "bf16")
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda", "mps")


class BadDeviceSetting(MMSearchError):
    pass


def check_device(device: str) -> None:
    if device != "auto" and device.split(":")[0] not in DEVICES[1:]:
        raise BadDeviceSetting(f"unknown device {device!r}; use one of {', '.join(DEVICES)}")


def check_precision(precision: str) -> None:
    if precision not in PRECISIONS:
        raise BadDeviceSetting(f"unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}")


def pick_device(device: str) -> torch.device:
    """'auto' -> cuda, then mps, then cpu. 'cuda:1' and the like pass through."""
    import torch

    check_device(device)
    if device != "auto":
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
    import torch

    check_precision(precision)
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


class Placed:
    """`device` and `dtype` resolved on first use (resolving imports torch); the settings are checked at once."""

    _device: Any = None
    _dtype: Any = None

    def _place(self, device: str, precision: str) -> None:
        check_device(device)
        check_precision(precision)
        if device.split(":")[0] == "cpu":  # known without torch: refuse half precision on a CPU now
            if precision not in ("auto", "fp32"):
                raise BadDeviceSetting(
                    f"precision {precision} needs a GPU (cuda or mps), but the model runs on cpu; "
                    f"use --precision fp32 (or auto) on a CPU")
        self._device_setting, self._precision = device, precision

    @property
    def device(self) -> torch.device:
        if self._device is None:
            self._device = pick_device(self._device_setting)
        return self._device

    @device.setter
    def device(self, value: Any) -> None:
        self._device, self._dtype = value, None

    @property
    def dtype(self) -> torch.dtype:
        if self._dtype is None:
            self._dtype = pick_dtype(self.device, self._precision)
        return self._dtype


class HubEncoder(Placed, Encoder):
    """Set-up shared by encoders loaded by repo id or local folder: where to look for the weights, and
    where and in which format to run them. Subclasses add what is particular to their model."""

    def __init__(self, model: str, models_dir: str | Path, cache_dir: str | None, offline: bool, device: str,
                 precision: str = "fp32") -> None:
        super().__init__()
        self.model_name = model
        self.models_dir = Path(models_dir)
        self.cache_dir = cache_dir
        self.offline = offline
        self._place(device, precision)
