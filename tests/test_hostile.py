"""Hostile and broken media: nothing crashes the process or hangs; every bad file is skipped with a reason.

The fuzz run is bounded for CI (MMSEARCH_FUZZ_EXAMPLES, default 400 per format); set it higher for a
longer run, e.g. MMSEARCH_FUZZ_EXAMPLES=20000 pytest tests/test_hostile.py. Image mutations are
structure-aware (tests/fuzz_support.py) and each format's run reports, and asserts, how many of its
inputs got past identification to the decoder.
"""

from __future__ import annotations

import io
import os
import struct
import time
import zlib
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st
from PIL import Image

from mmsearch.errors import BadMedia
from mmsearch.media.images import decode_image
from mmsearch.service import MMSearch
from tests import fuzz_support as fuzz
from tests.conftest import write_image

EXAMPLES = int(os.environ.get("MMSEARCH_FUZZ_EXAMPLES", "400"))
LIMIT = 50_000_000
REACH = 0.5  # at least this share of each format's mutated files must get past identification to the decoder
TRIED = {"inputs": 0}
STAGES: dict[str, Counter] = {}


@st.composite
def mutated(draw, seed: bytes, header: int = 32) -> bytes:
    """Flips, truncations, insertions, deletions, and overwrites of the first `header` bytes (the sounds'
    fuzz; the images' is structure-aware, tests/fuzz_support.py)."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 8))):
        op = draw(st.sampled_from(["flip", "truncate", "insert", "delete", "header"]))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[pos] ^= draw(st.integers(1, 255))
        elif op == "truncate":
            data = data[:pos]
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=64))
        elif op == "delete":
            del data[pos:pos + draw(st.integers(1, 64))]
        elif op == "header" and len(data) > header + 4:
            i = draw(st.integers(0, header - 1))
            data[i:i + 4] = draw(st.binary(min_size=4, max_size=4))
    return bytes(data)


def _stage(data: bytes) -> str:
    """How far Pillow gets: "unidentified", "refused" (header parsed, over the pixel limit) or "decoder"
    (identified with a size within the limit: decode_image goes on to decode its pixels)."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            width, height = img.size
    except Exception:  # noqa: BLE001 - any failure here is a failure to identify
        return "unidentified"
    return "decoder" if width * height <= LIMIT else "refused"


def _decode_or_skip(data: bytes, name: str, stages: Counter | None = None) -> None:
    TRIED["inputs"] += 1
    started = time.perf_counter()
    try:
        out = decode_image(data, name, LIMIT, draft_size=224)
        assert out.image.mode == "RGB" and out.width > 0 and out.height > 0
        outcome = "decoded"
    except BadMedia as bad:
        assert bad.path == name and bad.reason
        outcome = "skipped"
    assert time.perf_counter() - started < 5, f"{name}: decoding took too long"
    if stages is not None:
        stages["inputs"] += 1
        stages[_stage(data)] += 1
        stages[outcome] += 1


def _shares(stages: Counter) -> str:
    n = stages["inputs"]
    return ", ".join(f"{k} {stages[k] / n:.0%}" for k in ("unidentified", "refused", "decoder", "decoded"))


@pytest.mark.parametrize("fmt", sorted(fuzz.MUTATIONS))
def test_fuzzed_images_decode_or_skip_with_a_reason(fmt):
    stages = STAGES.setdefault(fmt, Counter())

    @hsettings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(fuzz.structured(fmt))
    def run(data: bytes) -> None:
        _decode_or_skip(data, f"fuzz.{fmt.lower()}", stages)

    run()
    assert stages["inputs"] >= EXAMPLES  # every example met the decoder path, none was filtered out
    assert stages["decoded"] + stages["skipped"] == stages["inputs"]
    # Mutations keep the file's structure (lengths, CRCs, offsets), so most inputs reach the pixel decoder
    # instead of dying at identification; the share is the fuzz run's depth.
    assert stages["decoder"] >= REACH * stages["inputs"], f"{fmt}: {_shares(stages)}"


@hsettings(max_examples=EXAMPLES, deadline=None, database=None)
@given(st.binary(max_size=4096))
def test_random_bytes_under_an_image_name(data):
    _decode_or_skip(data, "random.jpg")


def test_report_fuzz_count(capsys):
    # Runs after the fuzz tests in file order; the counts go into the test log.
    with capsys.disabled():
        for fmt, stages in sorted(STAGES.items()):
            print(f"\n[fuzz] {fmt}: {stages['inputs']} mutated files decoded or skipped, none crashed: {_shares(stages)}")
        print(f"[fuzz] {TRIED['inputs']} image inputs in all")
    assert TRIED["inputs"] >= EXAMPLES


def test_decoder_type_errors_are_a_reason_to_skip():
    # Found by the structured fuzz: StripOffsets typed ASCII makes Pillow's TIFF loader seek to a string
    # (TypeError), a 1-byte cHRM chunk makes its PNG reader unpack too little (struct.error).
    tiff = bytearray(fuzz.seeds("TIFF")[0])
    at = next(e[0] for e in fuzz.tiff_entries(bytes(tiff)) if e[1] == 273)
    tiff[at + 2:at + 4] = struct.pack("<H", 2)
    png = fuzz.png_chunks(fuzz.seeds("PNG")[0])
    png.insert(1, [b"cHRM", b"\0"])
    for data, name in [(bytes(tiff), "strips.tif"), (fuzz.png_build(png), "chrm.png")]:
        with pytest.raises(BadMedia, match="corrupt"):
            decode_image(data, name, LIMIT)


def _png_with_size(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.new("L", (1, 1)).save(buf, format="PNG")
    data = bytearray(buf.getvalue())
    ihdr = struct.pack(">II", width, height) + bytes(data[24:29])
    data[16:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr) & 0xFFFFFFFF)
    return bytes(data)


def test_a_100k_by_100k_header_is_refused_without_allocating():
    started = time.perf_counter()
    with pytest.raises(BadMedia, match="limit|bomb"):
        decode_image(_png_with_size(100_000, 100_000), "huge.png", LIMIT)
    assert time.perf_counter() - started < 1


def test_animation_with_thousands_of_frames_uses_the_first_only():
    frames = [Image.new("P", (2, 2), i % 256) for i in range(3000)]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:])
    started = time.perf_counter()
    out = decode_image(buf.getvalue(), "long.gif", LIMIT)
    assert out.image.size == (2, 2) and time.perf_counter() - started < 2


def test_hostile_folder_is_indexed_around_its_traps(settings, tmp_path):
    root = tmp_path / "hostile"
    write_image(root / "good.jpg", 1)
    write_image(root / "line\nbreak.png", 2)  # a newline in the name is a valid name
    bad_name = os.fsencode(str(root)) + b"/bad\xff\xfe.jpg"
    with open(bad_name, "wb") as fh:
        fh.write((root / "good.jpg").read_bytes())
    (root / "zero.jpg").write_bytes(b"")
    (root / "one.png").write_bytes(b"\x89")
    os.symlink(root, root / "loop")
    os.symlink(root / "missing.jpg", root / "dangling.jpg")
    os.mkfifo(root / "pipe.jpg")  # opening it would block forever: must never be opened
    os.symlink("/dev/zero", root / "endless.jpg")
    report = MMSearch(settings).index([root])
    reasons = {os.path.basename(p): r for p, r in report.skipped}
    assert report.embedded == 2
    assert "not valid UTF-8" in reasons["bad\\xff\\xfe.jpg"]
    assert "empty" in reasons["zero.jpg"] and "not a readable image" in reasons["one.png"]
    assert not {"pipe.jpg", "endless.jpg", "dangling.jpg", "loop"} & reasons.keys()  # never treated as files
    hits = MMSearch(settings).search_text("anything", k=10)
    assert {Path(h.path).name for h in hits} == {"good.jpg", "line\nbreak.png"}


def _audio_seed(fmt: str) -> bytes:
    import soundfile as sf

    buf = io.BytesIO()
    t = np.linspace(0, 0.5, 8000, dtype=np.float32)
    sf.write(buf, np.stack([np.sin(2 * np.pi * 440 * t), np.sin(2 * np.pi * 660 * t)], axis=1), 16000, format=fmt)
    return buf.getvalue()


AUDIO_SEEDS = {fmt: _audio_seed(fmt) for fmt in ["WAV", "FLAC", "OGG"]}
AUDIO_STAGES: dict[str, Counter] = {}


@pytest.mark.parametrize("fmt", sorted(AUDIO_SEEDS))
def test_fuzzed_audio_decodes_or_skips_with_a_reason(fmt, tmp_path):
    from mmsearch.media.audio import stream_windows

    target = tmp_path / f"fuzz.{fmt.lower()}"

    @hsettings(max_examples=max(50, EXAMPLES // 4), deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(mutated(AUDIO_SEEDS[fmt], header=44))
    def run(data: bytes) -> None:
        TRIED["audio"] = TRIED.get("audio", 0) + 1
        stages["inputs"] += 1
        target.write_bytes(data)
        started = time.perf_counter()
        try:
            for w in stream_windows(target, 48_000, 10.0, 7.5, max_s=120):
                assert w.samples.dtype == np.float32 and np.isfinite(w.samples).all()
            stages["decoded"] += 1
        except BadMedia as bad:
            assert bad.reason
        assert time.perf_counter() - started < 10, f"{fmt}: decoding took too long"

    stages = AUDIO_STAGES.setdefault(fmt, Counter())
    run()
    assert stages["inputs"] >= max(50, EXAMPLES // 4)


def test_report_audio_fuzz_count(capsys):
    with capsys.disabled():
        for fmt, stages in sorted(AUDIO_STAGES.items()):
            print(f"\n[fuzz] {fmt}: {stages['inputs']} mutated sounds, {stages['decoded'] / stages['inputs']:.0%} "
                  f"decoded to windows, the rest skipped with a reason")
        print(f"[fuzz] {TRIED.get('audio', 0)} audio inputs decoded or skipped, none crashed")
    assert TRIED.get("audio", 0) >= 150
