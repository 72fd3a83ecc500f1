"""README promises about sounds, through the `mmsearch` command: Opus and AIFF files, and the length cap on a
query sound (MMSEARCH_MAX_QUERY_AUDIO_S). The tiny random CLAP (tests/audio_support.py) has 2 s windows."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.audio_support import WINDOW_S, tiny_clap_dir, write_sound  # noqa: F401 - a fixture
from tests.test_promises import Ran, mmsearch  # noqa: F401 - a fixture

RATE = 48_000  # the tiny CLAP's rate: no resampling, so a cut clip and its head are the same samples


@pytest.fixture
def sounds(mmsearch, tmp_path: Path, tiny_model_dir: Path, tiny_clap_dir: Path):  # noqa: F811
    base = ["--data-dir", str(tmp_path / "library"), "--model", str(tiny_model_dir), "--pretrained", "",
            "--device", "cpu", "--offline", "--audio-model", str(tiny_clap_dir)]

    def run(*args: str, env: dict[str, str] | None = None) -> Ran:
        return mmsearch(*base, *args, env={"MMSEARCH_AUDIO": "true", **(env or {})})

    return run


def _status_rows(run) -> dict[str, int]:
    return {t["modality"]: t["rows"] for t in json.loads(run("status", "--json").out)["tables"]}


def test_opus_and_aiff_files_are_indexed_and_found(sounds, tmp_path: Path):
    root = tmp_path / "sounds"
    write_sound(root / "voice.opus", 3.0, rate=RATE, kind="chirp", fmt="OGG", subtype="OPUS")
    write_sound(root / "studio.aiff", 2.5, rate=44_100, channels=2, freq=220, fmt="AIFF")
    write_sound(root / "hum.aif", 1.5, rate=RATE, freq=60, fmt="AIFF")
    write_sound(root / "noise.wav", 4.0, rate=RATE, kind="noise")
    res = sounds("index", "-q", str(root))
    assert res.code == 0 and "embedded 4," in res.err and "skipped 0 " in res.err, res.err
    assert _status_rows(sounds)["audio"] == 4
    for name, seconds in (("voice.opus", 3.0), ("studio.aiff", 2.5), ("hum.aif", 1.5)):
        hits = sounds("search", "--audio", str(root / name), "--target", "audio", "-k", "4").records()
        assert hits[0]["path"] == str(root / name), name  # its own vector: the same windows, the same pooling
        assert hits[0]["score"] == pytest.approx(1.0, abs=1e-4)
        assert hits[0]["duration_s"] == pytest.approx(seconds, abs=0.05), name


def test_query_sounds_are_cut_after_max_query_audio_s(sounds, tmp_path: Path):
    import soundfile as sf

    root = tmp_path / "sounds"
    for i, (kind, freq) in enumerate([("tone", 440), ("noise", 0), ("chirp", 300), ("tone", 90)]):
        write_sound(root / f"s{i}.wav", 3.0, rate=RATE, kind=kind, freq=freq or 440, seed=i)
    assert sounds("index", "-q", str(root)).code == 0
    t = np.arange(WINDOW_S * RATE) / RATE
    head = (0.3 * np.sin(2 * np.pi * 700 * t)).astype(np.float32)
    tail = (0.3 * np.random.default_rng(5).standard_normal(4 * RATE)).astype(np.float32)
    sf.write(tmp_path / "long.wav", np.concatenate([head, tail]), RATE, subtype="FLOAT")
    sf.write(tmp_path / "head.wav", head, RATE, subtype="FLOAT")

    def scores(query: Path, cap: str | None = None) -> dict[str, float]:
        env = {"MMSEARCH_MAX_QUERY_AUDIO_S": cap} if cap else None
        hits = sounds("search", "--audio", str(query), "--target", "audio", "-k", "4", env=env).records()
        assert len(hits) == 4
        return {h["path"]: h["score"] for h in hits}

    cut = scores(tmp_path / "long.wav", str(WINDOW_S))
    first_seconds = scores(tmp_path / "head.wav")
    whole = scores(tmp_path / "long.wav")
    assert cut.keys() == first_seconds.keys()
    assert all(cut[p] == pytest.approx(first_seconds[p], abs=1e-5) for p in cut)  # only the first 2 s heard
    assert max(abs(whole[p] - first_seconds[p]) for p in whole) > 1e-3  # uncut, the noise changes the query
