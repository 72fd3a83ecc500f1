"""Keeping an indexing process's memory flat: glibc's allocator, told how decoded pictures come and go.

A decoded 12 MP photo or 3000x2000 RGBA PNG is a 20-50 MB buffer that lives a few milliseconds in a decode
thread. glibc serves it from that thread's own arena (one per thread, up to 8 per core) once its dynamic
mmap threshold has risen past the buffer size (it does after the first such buffer is freed), and an arena
seldom shrinks: each decode thread keeps its high-water mark of freed buffers, and the process grows with
the number of threads and the size of the largest pictures seen (bench/results/ingest_memory.md).

So, before the decode threads start: big buffers always get their own mapping (returned to the system on
free), and the threads share a few arenas. After each commit, free pages go back (malloc_trim). Elsewhere
than glibc (macOS, musl) this module does nothing.
"""

from __future__ import annotations

import ctypes
import os
import sys
from functools import lru_cache

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameters (malloc.h)
M_ARENA_MAX = -8
MMAP_THRESHOLD = 1 << 20  # buffers from 1 MiB up (any decoded picture) are mapped, and unmapped on free
ARENAS = 2
_ENV = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_ARENA_MAX")  # a person's own choice wins over ours


@lru_cache(maxsize=1)
def _glibc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt.argtypes, libc.malloc_trim.argtypes = [ctypes.c_int, ctypes.c_int], [ctypes.c_size_t]
        return libc
    except (OSError, AttributeError):  # not glibc
        return None


@lru_cache(maxsize=1)
def tune_allocator() -> bool:
    """Once per process, before decode threads start; True when glibc took the settings."""
    libc = _glibc()
    if libc is None or any(name in os.environ for name in _ENV):
        return False
    return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(libc.mallopt(M_ARENA_MAX, ARENAS))


def release_free_memory() -> None:
    """Give freed heap pages back to the system (after a commit: Arrow batches and rows just died)."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)
