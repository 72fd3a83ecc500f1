"""Flat indexing memory (issue 14, part 4): freed pictures go back to the system, from any decode thread."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

# In a fresh process: a decode-sized buffer (24 MB, a 3000x2000 RGBA picture) made and freed twice in a worker
# thread; prints how much of it the process still holds afterwards (MB of RSS above the start).
RETAINED = textwrap.dedent("""
    import importlib.util, pathlib, sys, threading
    import numpy as np

    # the module alone, not the mmsearch.ingest package (which imports lancedb: a minute on busy cores)
    where = pathlib.Path(importlib.util.find_spec("mmsearch").origin).parent / "ingest" / "memory.py"
    spec = importlib.util.spec_from_file_location("memory", where)
    memory = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(memory)
    tune_allocator = memory.tune_allocator

    def rss():
        with open("/proc/self/status") as fh:
            return next(int(l.split()[1]) for l in fh if l.startswith("VmRSS:")) / 1024

    tuned = tune_allocator() if sys.argv[1] == "tuned" else False
    def decode():
        for _ in range(2):  # the first free raises glibc's dynamic mmap threshold; the second buffer stays
            picture = np.ones(24 << 20, np.uint8)
            del picture
    start = rss()
    t = threading.Thread(target=decode)
    t.start(); t.join()
    print(tuned, round(rss() - start, 1))
""")


def _retained(mode: str) -> tuple[bool, float]:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": ":".join(sys.path)}  # no MALLOC_* from the caller's shell
    out = subprocess.run([sys.executable, "-c", RETAINED, mode], capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr
    tuned, mb = out.stdout.split()
    return tuned == "True", float(mb)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator is what is tuned")
def test_a_freed_picture_leaves_the_process_after_tuning():
    tuned, mb = _retained("tuned")
    assert tuned and mb < 8  # the 24 MB buffer was unmapped on free


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator is what is tuned")
def test_without_tuning_glibc_keeps_the_freed_picture():
    tuned, mb = _retained("defaults")  # the control: what the tuning is for (fails if glibc stops doing this)
    assert not tuned and mb > 20


def test_tuning_leaves_a_persons_own_malloc_settings_alone(monkeypatch):
    from mmsearch.ingest import memory

    memory.tune_allocator.cache_clear()
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    try:
        assert memory.tune_allocator() is False
    finally:
        memory.tune_allocator.cache_clear()
