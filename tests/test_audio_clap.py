"""The CLAP encoder: a tiny random ClapModel saved like real weights and loaded through the production path."""

from __future__ import annotations

import hashlib
import json
import os
import shutil

import numpy as np
import pytest
import soundfile as sf

from mmsearch.encoders.clap import ClapEncoder
from mmsearch.encoders.pooling import embed_clip, pool_windows
from mmsearch.errors import BadQuery, UnknownModel, WeightsNotFound
from mmsearch.media.audio import stream_windows
from tests.audio_support import WINDOW_S, make_tiny_clap_dir, tiny_clap_dir, write_sound  # noqa: F401

RATE = 48_000


@pytest.fixture(scope="module")
def clap(tiny_clap_dir) -> ClapEncoder:  # noqa: F811
    return ClapEncoder(str(tiny_clap_dir), device="cpu", offline=True)


def test_loads_a_saved_folder_and_describes_its_space(clap, tiny_clap_dir):  # noqa: F811
    space = clap.space
    digest = hashlib.sha256((tiny_clap_dir / "model.safetensors").read_bytes()).hexdigest()
    assert (space.encoder, space.model, space.weights, space.dim) == ("clap", "tiny-clap", f"sha256:{digest[:16]}", 24)
    assert not clap.loaded  # the space comes from config.json, not from loading the model
    assert (clap.audio_rate(), clap.audio_window_s()) == (RATE, WINDOW_S) and clap.loaded
    # The saved processor says truncation="fusion" (transformers' default); a model without fusion needs rand_trunc.
    saved = json.loads((tiny_clap_dir / "processor_config.json").read_text())
    assert saved["feature_extractor"]["truncation"] == "fusion"
    assert clap._truncation == "rand_trunc"


def test_audio_and_text_vectors_are_unit_length_in_one_space(clap):
    windows = [np.random.default_rng(i).standard_normal(RATE * WINDOW_S).astype(np.float32) * 0.1 for i in range(3)]
    windows.append(np.zeros(RATE // 2, np.float32))  # short and silent: padded by the processor
    audio = clap.encode_audio([clap.preprocess_audio(w) for w in windows])
    text = clap.encode_text(["rain on a tin roof", "a dog barking"])
    assert audio.shape == (4, 24) and text.shape == (2, 24)
    np.testing.assert_allclose(np.linalg.norm(np.vstack([audio, text]), axis=1), 1.0, atol=1e-5)
    again = clap.encode_audio([clap.preprocess_audio(windows[0])])
    np.testing.assert_allclose(again[0], audio[0], atol=1e-5)  # no random crop on a full window


@pytest.mark.parametrize("fusion", [False, True])
def test_batched_log_mel_matches_the_feature_extractor(tmp_path, fusion):
    import torch

    enc = ClapEncoder(str(make_tiny_clap_dir(tmp_path / "m", fusion=fusion)), device="cpu", offline=True)
    enc.load()
    rng = np.random.default_rng(0)
    clips = [rng.standard_normal(RATE * WINDOW_S).astype(np.float32) * 0.1, np.zeros(RATE * WINDOW_S, np.float32),
             (0.5 * np.sin(np.arange(RATE // 3) / RATE * 2 * np.pi * 440)).astype(np.float32)]  # short: repeat-padded
    mode = "fusion" if fusion else "rand_trunc"
    ref = enc._features(clips, sampling_rate=RATE, truncation=mode, padding="repeatpad", return_tensors="pt")
    batch = [enc.preprocess_audio(c) for c in clips]
    ours = enc._log_mel(torch.stack([w for w, _ in batch]))
    assert enc._truncation == mode and ours.shape == ref["input_features"].shape == (3, 4 if fusion else 1, 201, 16)
    # dB; float32 here, float64 there: only bins ~100 dB below a pure tone's peak differ noticeably
    assert float((ours - ref["input_features"]).abs().mean()) < 0.05
    with torch.inference_mode():
        expected = enc._model.get_audio_features(input_features=ref["input_features"],
                                                 is_longer=torch.zeros(3, 1, dtype=torch.bool)).pooler_output
    np.testing.assert_allclose(enc.encode_audio(batch), expected.numpy(), atol=1e-3)


def test_the_hf_cache_and_a_copied_folder_give_the_same_space(tmp_path, tiny_clap_dir):  # noqa: F811
    # The layout huggingface_hub writes: refs/main -> snapshots/<rev>/, LFS files linked to blobs/<sha256>.
    repo = tmp_path / "hub" / "models--test--tiny-clap"
    snap = repo / "snapshots" / "abc123"
    snap.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123")
    for f in tiny_clap_dir.iterdir():
        if f.name == "model.safetensors":
            digest = hashlib.sha256(f.read_bytes()).hexdigest()
            (repo / "blobs").mkdir()
            shutil.copy(f, repo / "blobs" / digest)
            os.symlink(repo / "blobs" / digest, snap / f.name)
        else:
            shutil.copy(f, snap / f.name)
    cached = ClapEncoder("test/tiny-clap", models_dir=tmp_path / "models", cache_dir=str(tmp_path / "hub"),
                         offline=True)
    assert cached.source.folder == snap.resolve()
    copied_dir = tmp_path / "models" / "test" / "tiny-clap"
    shutil.copytree(tiny_clap_dir, copied_dir)
    copied = ClapEncoder("test/tiny-clap", models_dir=tmp_path / "models", offline=True)
    assert copied.source.folder == copied_dir.resolve()
    assert cached.space == copied.space and cached.space.model == "test/tiny-clap"
    assert cached.encode_text(["x"]).shape == (1, 24)


def test_offline_without_weights_fails_fast_naming_files_and_folder(tmp_path):
    enc = ClapEncoder("laion/clap-htsat-unfused", models_dir=tmp_path / "models", cache_dir=str(tmp_path / "hub"),
                      offline=True)
    with pytest.raises(WeightsNotFound, match="model.safetensors.*preprocessor_config.json") as err:
        enc.load()
    assert str(tmp_path / "models" / "laion" / "clap-htsat-unfused") in str(err.value)


def test_wrong_folders_and_names_are_clear_errors(tmp_path, tiny_model_dir):
    with pytest.raises(UnknownModel, match="neither a folder nor"):
        _ = ClapEncoder("not a model", models_dir=tmp_path, offline=True).space
    (tmp_path / "bert").mkdir()
    (tmp_path / "bert" / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(UnknownModel, match="bert model, not CLAP"):
        _ = ClapEncoder(str(tmp_path / "bert"), offline=True).space
    with pytest.raises(WeightsNotFound, match="no config.json"):
        _ = ClapEncoder(str(tiny_model_dir), offline=True).space  # an open_clip folder
    (tmp_path / "empty-clap").mkdir()
    (tmp_path / "empty-clap" / "config.json").write_text(json.dumps({"model_type": "clap"}))
    with pytest.raises(WeightsNotFound, match="no weights"):
        _ = ClapEncoder(str(tmp_path / "empty-clap"), offline=True).space


def test_pooling_is_the_renormalised_mean_and_the_best_window_is_closest_to_it():
    vectors = np.array([[1, 0, 0], [0, 1, 0], [0.8, 0.6, 0], [0, 0, 3]], np.float32)
    pooled, best = pool_windows(vectors, [0.0, 7.5, 15.0, 22.5])
    expected = np.array([1.8, 1.6, 1.0]) / np.linalg.norm([1.8, 1.6, 1.0])  # unit windows averaged
    np.testing.assert_allclose(pooled, expected, atol=1e-6)
    assert best == 15.0
    with pytest.raises(ValueError):
        pool_windows(vectors, [0.0])


def test_query_clips_from_a_file_or_from_memory_agree(clap, tmp_path):
    path = write_sound(tmp_path / "q.wav", 5.0, kind="noise", subtype="PCM_16")
    pcm, rate = sf.read(path, dtype="int16")
    from_file = clap.encode_audio_query(str(path))
    from_mic = clap.encode_audio_query((rate, pcm))  # what gr.Audio(type="numpy") hands over
    reversed_pair = clap.encode_audio_query((pcm, rate))
    np.testing.assert_allclose(from_file, from_mic, atol=1e-4)
    np.testing.assert_allclose(from_mic, reversed_pair, atol=1e-6)
    manual, _ = embed_clip(clap, stream_windows(path, RATE, WINDOW_S, WINDOW_S * 0.75))
    np.testing.assert_allclose(from_file, manual, atol=1e-6)
    (tmp_path / "bad.wav").write_text("nope")
    with pytest.raises(BadQuery, match="bad.wav"):
        clap.encode_audio_query(str(tmp_path / "bad.wav"))
    with pytest.raises(BadQuery, match="recording"):
        clap.encode_audio_query((RATE, np.zeros(0, np.int16)))


def _features(out):
    return out if not hasattr(out, "pooler_output") else out.pooler_output


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_query_sounds_and_texts_match_the_transformers_model_called_directly(clap, tiny_clap_dir, tmp_path):  # noqa: F811
    # The reference path shares nothing with the encoder: soundfile reads the samples, numpy cuts the
    # windows (2 s every 1.5 s, then the tail past the last full window), ClapProcessor makes the log-mel
    # and ClapModel (loaded again) embeds; the clip is the renormalised mean of the window vectors.
    import torch
    from transformers import ClapModel, ClapProcessor

    model = ClapModel.from_pretrained(str(tiny_clap_dir)).eval()
    processor = ClapProcessor.from_pretrained(str(tiny_clap_dir))
    win, hop = RATE * WINDOW_S, int(RATE * WINDOW_S * 0.75)

    def reference(path) -> np.ndarray:
        x, rate = sf.read(path, dtype="float32")
        assert rate == RATE and x.ndim == 1
        starts = list(range(0, len(x) - win + 1, hop))
        windows = [x[s:s + win] for s in starts]
        if not starts or starts[-1] + win < len(x):
            windows.append(x[(starts[-1] + hop) if starts else 0:])  # the tail, repeat-padded by the processor
        feats = processor.feature_extractor(windows, sampling_rate=RATE, return_tensors="pt", truncation="rand_trunc",
                                            padding="repeatpad")
        with torch.inference_mode():
            out = model.get_audio_features(input_features=feats["input_features"], is_longer=feats["is_longer"])
        return _unit(_unit(_features(out).numpy()).mean(axis=0))

    clips = [write_sound(tmp_path / "noise.wav", 5.0, kind="noise"), write_sound(tmp_path / "tone.wav", 3.3),
             write_sound(tmp_path / "chirp.wav", 4.0, kind="chirp"), write_sound(tmp_path / "low.wav", 1.2, freq=110)]
    got = np.stack([clap.encode_audio_query(str(p)) for p in clips])
    want = np.stack([reference(p) for p in clips])
    gap = min(np.abs(want[i] - want[j]).max() for i in range(len(clips)) for j in range(i))
    err = np.abs(got - want).max()
    assert err < 1e-4 < gap / 10, (err, gap)  # the tolerance is far below the distance between different sounds

    texts = ["rain on a tin roof", "a dog barking", "a dog barking loudly", "x"]
    tokens = processor.tokenizer(texts, padding=True, return_tensors="pt")
    with torch.inference_mode():
        want_text = _unit(_features(model.get_text_features(**tokens)).numpy())
    text_gap = min(np.abs(want_text[i] - want_text[j]).max() for i in range(len(texts)) for j in range(i))
    text_err = np.abs(clap.encode_text(texts) - want_text).max()
    assert text_err < 1e-5 < text_gap / 10, (text_err, text_gap)
