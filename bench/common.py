"""What every benchmark section shares: the model under test, timers, percentiles, the machine."""

from __future__ import annotations

import os
import platform
import resource
import statistics
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as `python bench/bench_core.py` from a checkout, not installed
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the benchmark never reaches the network
os.environ.setdefault("TQDM_DISABLE", "1")  # lancedb's open-clip function draws a bar per batch

from mmsearch.encoders import Encoder  # noqa: E402
from mmsearch.service import encoder_from_settings  # noqa: E402
from mmsearch.settings import Settings  # noqa: E402

MODELS = ("tiny", "ViT-B-32")


@dataclass
class ModelUnderTest:
    """One model, reachable both through mmsearch and through lancedb's own open-clip function."""

    key: str
    settings: Settings
    lancedb_name: str  # `name=` for lancedb's open-clip function; its `pretrained=""` means random init

    def encoder(self) -> Encoder:
        return encoder_from_settings(self.settings)

    def with_data_dir(self, data_dir: Path) -> Settings:
        return self.settings.model_copy(update={"data_dir": data_dir})


def model_under_test(key: str, work: Path) -> ModelUnderTest:
    base = dict(data_dir=work / "unused-library", models_dir=work / "models", device="cpu", offline=True)
    if key == "tiny":
        folder = work / "models" / "tiny-clip"
        if not (folder / "open_clip_model.safetensors").is_file():
            sys.path.insert(0, str(ROOT / "tests"))
            from conftest import make_tiny_model_dir  # the tests' tiny model, so both measure the same thing

            make_tiny_model_dir(folder)
        return ModelUnderTest(key, Settings(model=str(folder), pretrained="", **base), f"local-dir:{folder}")
    if key == "ViT-B-32":
        # Random weights: the real architecture and the same compute as released weights, no download.
        return ModelUnderTest(key, Settings(model="ViT-B-32", pretrained="random", **base), "ViT-B-32")
    raise SystemExit(f"unknown --model {key!r}; choose one of {', '.join(MODELS)}")


# -- timing ---------------------------------------------------------------------------------------
def timed(fn: Callable[[], Any]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def percentiles(samples: list[float], scale: float = 1000.0) -> dict[str, float]:
    """p50/p95/mean of samples in seconds, reported in ms by default."""
    s = sorted(samples)
    p95 = s[min(len(s) - 1, max(0, round(0.95 * len(s)) - 1))]
    return {"p50": round(statistics.median(s) * scale, 3), "p95": round(p95 * scale, 3),
            "mean": round(statistics.fmean(s) * scale, 3), "n": len(s)}


def latencies(fn: Callable[[int], Any], n: int, warmup: int = 3, budget_s: float | None = None) -> list[float]:
    """Times fn(i) for i in range(n) after `warmup` untimed calls; stops early past budget_s."""
    for i in range(warmup):
        fn(i)
    out: list[float] = []
    start = time.perf_counter()
    for i in range(n):
        out.append(timed(lambda: fn(i)))
        if budget_s is not None and len(out) >= 5 and time.perf_counter() - start > budget_s:
            break
    return out


def interleaved(fns: dict[str, Callable[[int], Any]], n: int, warmup: int = 2,
                budget_s: dict[str, float] | None = None, gap_s: float = 0.0) -> dict[str, dict[str, float]]:
    """Percentiles of each fn(i), called in turn for every i, so load from other users hits all alike.

    A fn with a budget stops being called once its timed calls add up to that many seconds (min 5 calls).
    gap_s idles before each call, as between a person's queries: thread pools (BLAS) have gone to sleep.
    """
    budget_s = budget_s or {}
    for name, fn in fns.items():
        for i in range(warmup):
            fn(i)
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for i in range(n):
        for name, fn in fns.items():
            done = samples[name]
            if name in budget_s and len(done) >= 5 and sum(done) > budget_s[name]:
                continue
            if gap_s:
                time.sleep(gap_s)
            done.append(timed(lambda: fn(i)))
    return {name: percentiles(s) for name, s in samples.items()}


class CpuShare:
    """How busy the machine was with other people's work while a section ran (from /proc/stat)."""

    def __init__(self) -> None:
        self.start = (time.perf_counter(), _busy_s(), own_cpu_s())

    def others(self) -> float:
        wall, busy, own = (b - a for a, b in zip(self.start, (time.perf_counter(), _busy_s(), own_cpu_s())))
        cores = len(os.sched_getaffinity(0))
        return round(max(0.0, busy - own) / (wall * cores), 3) if wall > 0 else 0.0


def _busy_s() -> float:
    fields = _read("/proc/stat").splitlines()[0].split()[1:]
    user, nice, system, idle, iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def own_cpu_s() -> float:
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


class Stopwatch:
    """Accumulates the time spent inside one method while it is patched in."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.calls = 0

    @contextmanager
    def around(self, owner: Any, name: str) -> Iterator["Stopwatch"]:
        had_own = name in vars(owner)
        original = getattr(owner, name)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            t = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - t
                self.calls += 1

        setattr(owner, name, wrapper)
        try:
            yield self
        finally:
            if had_own:
                setattr(owner, name, original)
            else:
                delattr(owner, name)


# -- the machine ----------------------------------------------------------------------------------
def machine() -> dict[str, Any]:
    import lancedb
    import numpy
    import open_clip
    import PIL
    import torch

    cpu = next((line.split(":", 1)[1].strip() for line in _read("/proc/cpuinfo").splitlines()
                if line.startswith("model name")), platform.processor())
    mem_kb = next((int(line.split()[1]) for line in _read("/proc/meminfo").splitlines()
                   if line.startswith("MemTotal")), 0)
    return {
        "cpu": cpu, "cores": os.cpu_count(), "cores_usable": len(os.sched_getaffinity(0)),
        "ram_gb": round(mem_kb / 2**20, 1), "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(), "python": platform.python_version(),
        "torch": torch.__version__, "open_clip": open_clip.__version__, "lancedb": lancedb.__version__,
        "numpy": numpy.__version__, "pillow": PIL.__version__, "loadavg_start": os.getloadavg(),
        "mmsearch_source": source_version(),
    }


def source_version() -> str:
    """The commit of the mmsearch code measured (BENCH_COMMIT names it for an exported tree)."""
    import subprocess

    if os.environ.get("BENCH_COMMIT"):
        return os.environ["BENCH_COMMIT"]
    try:
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "mmsearch"], capture_output=True,
                               text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (" + uncommitted changes in mmsearch/" if dirty else "")


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def proc_status_mb(field: str) -> float:
    """VmRSS / VmHWM of this process in MiB (Linux)."""
    for line in _read("/proc/self/status").splitlines():
        if line.startswith(field + ":"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")
