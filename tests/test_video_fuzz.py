"""Fuzzing the container parsing: mutated MP4 and WebM bytes decode or are skipped with a reason, never crash
or hang. Bounded (MMSEARCH_FUZZ_EXAMPLES / 4 per format, at least 40) and reproducible (the conftest
profile derandomizes hypothesis).

Mutations aim at the headers: most land in the MP4's moov box (track, sample tables, codec configuration)
or the WebM's EBML header, segment info and tracks, before the first cluster; 4-byte fields get boundary
values (0, 1, 0x7fffffff, 0xffffffff), which is where length and count bugs live. The rest flip, cut,
insert into or delete from the whole file.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from mmsearch.errors import BadMedia
from mmsearch.media.audio import stream_spans
from mmsearch.media.shots import moments
from mmsearch.media.video import DecodeLimits, iter_frames, probe_video
from tests.video_support import photo, write_video

EXAMPLES = max(40, int(os.environ.get("MMSEARCH_FUZZ_EXAMPLES", "400")) // 4)
BOUNDARY = [b"\x00\x00\x00\x00", b"\x00\x00\x00\x01", b"\x7f\xff\xff\xff", b"\xff\xff\xff\xff", b"\x00\x01\x00\x00"]
STAGES: dict[str, Counter] = {}


def _seed(tmp: Path, suffix: str) -> bytes:
    clip = np.zeros(int(0.6 * 48_000), np.float32)
    clip[::100] = 0.5
    path = write_video(tmp / f"seed{suffix}", [(0.6, photo("astronaut", (32, 24)), clip),
                                               (0.6, photo("coffee", (32, 24)), None)], fps=5)
    return path.read_bytes()


def _hot(data: bytes, suffix: str) -> tuple[int, int]:
    """The header region: the moov box, or everything before the first WebM cluster."""
    if suffix == ".mp4":
        at = data.find(b"moov") - 4
        return (at, len(data)) if at >= 0 else (0, len(data))
    cluster = data.find(b"\x1f\x43\xb6\x75")
    return 0, cluster if cluster > 0 else len(data)


@st.composite
def mutated(draw, seed: bytes, hot: tuple[int, int]) -> bytes:
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 6))):
        lo, hi = hot if draw(st.integers(0, 9)) < 7 else (0, len(data))
        hi = min(hi, len(data))
        if hi - lo < 8:
            lo, hi = 0, len(data)
        if not data:
            break
        pos = draw(st.integers(lo, max(lo, hi - 1)))
        op = draw(st.sampled_from(["field", "flip", "truncate", "insert", "delete"]))
        if op == "field" and pos + 4 <= len(data):
            data[pos:pos + 4] = draw(st.sampled_from(BOUNDARY) | st.binary(min_size=4, max_size=4))
        elif op == "flip":
            data[pos] ^= draw(st.integers(1, 255))
        elif op == "truncate":
            data = data[:pos]
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=32))
        else:
            del data[pos:pos + draw(st.integers(1, 32))]
    return bytes(data)


@pytest.mark.parametrize("suffix", [".mp4", ".webm"])
def test_fuzzed_videos_decode_or_skip_with_a_reason(suffix, tmp_path):
    seed = _seed(tmp_path, suffix)
    target = tmp_path / f"fuzz{suffix}"
    stages = STAGES.setdefault(suffix, Counter())
    limits = DecodeLimits(budget_s=20.0)

    @hsettings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(mutated(seed, _hot(seed, suffix)))
    def run(data: bytes) -> None:
        stages["inputs"] += 1
        target.write_bytes(data)
        started = time.perf_counter()
        try:
            info = probe_video(target)
            found = list(moments(iter_frames(target, limits), info.duration_s))
            assert found and all(m.frames and m.end_s > m.start_s for m in found)
            assert all(f.image.mode == "RGB" and min(f.image.size) > 0 for m in found for f in m.frames)
            stages["pictures"] += 1
            spans = [(m.start_s, m.end_s) for m in found][:20]
            for _, samples in stream_spans(target, 16_000, spans):
                assert samples.dtype == np.float32 and np.isfinite(samples).all()
            stages["sounds"] += 1
        except BadMedia as bad:
            assert bad.reason and "\n" not in bad.reason and bad.path == str(target)
        assert time.perf_counter() - started < 15, f"{suffix}: decoding took too long"

    run()
    assert stages["inputs"] >= EXAMPLES


def test_report_video_fuzz_count(capsys):
    with capsys.disabled():
        for suffix, s in sorted(STAGES.items()):
            print(f"\n[fuzz] {suffix}: {s['inputs']} mutated videos, {s['pictures']} decoded to moments, "
                  f"{s['sounds']} with their sound; the rest skipped with a reason")
    assert sum(s["inputs"] for s in STAGES.values()) >= 2 * EXAMPLES
