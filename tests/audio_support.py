"""Helpers for the audio tests: a tiny random CLAP saved like real weights, and generated sounds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

WINDOW_S = 2  # the tiny model's input length (real CLAP: 10 s)


def byte_level_tokenizer():
    """A RoBERTa tokenizer over single bytes: CLAP's tokenizer class, no download, tiny vocabulary."""
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import RobertaTokenizer

    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    vocab = {t: i for i, t in enumerate(specials + sorted(ByteLevel.alphabet()))}
    return RobertaTokenizer(vocab=vocab, merges=[])


def make_tiny_clap_dir(folder: Path, seed: int = 0, projection_dim: int = 24, fusion: bool = False) -> Path:
    """config.json + model.safetensors + processor files: the layout of a Hugging Face CLAP repo."""
    import torch
    from transformers import ClapConfig, ClapFeatureExtractor, ClapModel, ClapProcessor

    torch.manual_seed(seed)
    tok = byte_level_tokenizer()
    config = ClapConfig(
        text_config=dict(vocab_size=len(tok), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=128),
        audio_config=dict(spec_size=64, num_mel_bins=16, window_size=4, depths=[1, 1], num_attention_heads=[2, 2],
                          hidden_size=64, patch_embeds_hidden_size=32, enable_fusion=fusion),
        projection_dim=projection_dim,
    )
    features = ClapFeatureExtractor(feature_size=16, max_length_s=WINDOW_S, truncation="fusion")  # the default
    ClapModel(config).save_pretrained(folder)
    ClapProcessor(feature_extractor=features, tokenizer=tok).save_pretrained(folder)
    return folder


def write_sound(path: Path, seconds: float, rate: int = 48_000, channels: int = 1, freq: float = 440.0,
                kind: str = "tone", fmt: str | None = None, subtype: str | None = None, seed: int = 0) -> Path:
    import soundfile as sf

    n = int(seconds * rate)
    t = np.arange(n) / rate
    rng = np.random.default_rng(seed)
    if kind == "tone":
        mono = 0.3 * np.sin(2 * np.pi * freq * t)
    elif kind == "noise":
        mono = 0.3 * rng.standard_normal(n)
    elif kind == "chirp":
        mono = 0.3 * np.sin(2 * np.pi * (freq + 2000 * t / max(seconds, 1e-9)) * t)
    else:  # silence
        mono = np.zeros(n)
    data = np.repeat(mono[:, None], channels, axis=1) if channels > 1 else mono
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, data.astype(np.float32), rate, format=fmt, subtype=subtype)
    return path


@pytest.fixture(scope="session")
def tiny_clap_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_clap_dir(tmp_path_factory.mktemp("models") / "tiny-clap")


@pytest.fixture
def audio_settings(settings, tiny_clap_dir):
    return settings.model_copy(update={"audio_model": str(tiny_clap_dir), "audio_batch_size": 4})


@pytest.fixture
def sound_dir(tmp_path: Path) -> Path:
    root = tmp_path / "sounds"
    write_sound(root / "tone.wav", 1.5, freq=440)
    write_sound(root / "noise.flac", 5.0, kind="noise", rate=44_100, channels=2)
    write_sound(root / "chirp.ogg", 3.0, kind="chirp", rate=22_050, subtype="VORBIS")
    write_sound(root / "sub" / "low.mp3", 2.5, freq=110, rate=44_100, subtype="MPEG_LAYER_III")
    return root
