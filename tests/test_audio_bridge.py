"""The audio <-> image bridge and the four kinds of search on a mixed library of photos and sounds."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from mmsearch.bridge import AnchorBridge, BridgeProvider, bridge_path, load_vocabulary
from mmsearch.encoders.base import EmbeddingSpace, l2_normalize
from mmsearch.errors import BridgeMismatch, MMSearchError
from mmsearch.service import MMSearch
from mmsearch.settings import BRIDGE_VOCABULARY
from tests.audio_support import audio_settings, sound_dir, tiny_clap_dir, write_sound  # noqa: F401
from tests.conftest import make_tiny_model_dir


@pytest.fixture
def svc(audio_settings, sound_dir, photo_dir) -> MMSearch:  # noqa: F811
    shutil.copytree(photo_dir, sound_dir / "photos")
    mm = MMSearch(audio_settings)
    assert mm.index([sound_dir]).skipped == []
    return mm


def _spaces(dim_a: int = 4, dim_b: int = 3) -> tuple[EmbeddingSpace, EmbeddingSpace]:
    return EmbeddingSpace("clap", "a", "w1", dim_a), EmbeddingSpace("open-clip", "b", "w2", dim_b)


def test_the_shipped_vocabulary_is_varied_and_unique():
    captions, sha = load_vocabulary(BRIDGE_VOCABULARY)
    assert len(captions) >= 300 and len(set(captions)) == len(captions) and len(sha) == 64
    assert "a dog barking" in captions and not any(c.startswith("#") for c in captions)


def test_a_vector_crosses_to_the_captions_that_describe_it():
    audio_space, image_space = _spaces(4, 3)
    captions = ["thunder", "rain", "a dog", "a bell"]
    audio_text = np.eye(4, dtype=np.float32)  # each caption on its own axis in the audio space
    image_text = l2_normalize(np.array([[1, 0, 0], [0.9, 0.1, 0], [0, 1, 0], [0, 0, 1]], np.float32))
    bridge = AnchorBridge(audio_space, image_space, captions, audio_text, image_text, 100.0, 100.0, "sha", top_k=2)
    sound = l2_normalize(np.array([[0.9, 0.3, 0.1, 0.0]], np.float32))  # mostly thunder, some rain
    w = bridge.weights(sound, "audio->image")[0]
    assert w.sum() == pytest.approx(1.0) and np.count_nonzero(w) == 2 and w[0] > w[1] > 0
    out = bridge.project(sound, "audio->image")
    assert out.shape == (1, 3) and np.linalg.norm(out) == pytest.approx(1.0, abs=1e-6)
    assert np.argmax(out[0] @ image_text.T) in (0, 1)  # lands on thunder/rain, never on the dog
    photo = image_text[2:3]  # a photo of a dog crosses to the dog caption's audio vector
    np.testing.assert_allclose(bridge.project(photo, "image->audio")[0], audio_text[2], atol=1e-3)
    assert bridge.explain(sound[0], "audio->image")[0][0] == "thunder"


def test_fit_save_reload_and_refusal_for_another_pair(svc, tmp_path):
    provider = svc.bridge()
    assert not provider.path.exists() and provider.saved() is None
    fitted = provider.refit()
    path = bridge_path(svc.settings.models_dir, svc.audio_encoder.space, svc.encoder.space)
    assert provider.path == path and path.is_file()
    assert svc.audio_encoder.space.id in path.name and svc.encoder.space.id in path.name
    again = AnchorBridge.load(path, svc.audio_encoder.space, svc.encoder.space)
    np.testing.assert_array_equal(again.audio_text, fitted.audio_text)
    np.testing.assert_array_equal(again.image_text, fitted.image_text)
    assert again.captions == fitted.captions and again.audio_text.shape == (len(fitted.captions), 24)
    other = MMSearch(svc.settings.model_copy(update={"model": str(make_tiny_model_dir(tmp_path / "other", seed=3))}))
    with pytest.raises(BridgeMismatch, match="fitted for clap tiny-clap.*not clap tiny-clap.*other"):
        AnchorBridge.load(path, other.audio_encoder.space, other.encoder.space)
    assert other.bridge().path != path  # another pair of models gets a bridge of its own


def test_a_changed_vocabulary_refits_and_a_broken_file_is_a_clear_error(svc, tmp_path):
    vocab = tmp_path / "captions.txt"
    vocab.write_text("# mine\nthunder\nrain\nthunder\n\nsirens\n")
    svc.settings.bridge_vocabulary = vocab
    first = svc.bridge().get()
    assert first.captions == ["thunder", "rain", "sirens"]
    vocab.write_text("thunder\nrain\nsirens\nbirds\n")
    fresh = BridgeProvider(svc.audio_encoder, svc.encoder, svc.settings.models_dir, vocab)
    assert fresh.get().captions[-1] == "birds"  # refitted, not the stale file
    fresh.path.write_bytes(b"not a bridge")
    with pytest.raises(MMSearchError, match="mmsearch bridge fit"):
        fresh.saved()
    vocab.write_text("only one\n")
    with pytest.raises(MMSearchError, match="at least two captions"):
        load_vocabulary(vocab)


def test_text_to_audio_and_audio_to_audio(svc, sound_dir):  # noqa: F811
    hits = svc.search_text("rain on a tin roof", k=10, modality="audio")
    assert len(hits) == 4 and all(h.modality == "audio" for h in hits)
    assert all(h.duration_s and h.offset_s is not None for h in hits)
    assert hits[0].score >= hits[-1].score
    same = svc.search_audio(str(sound_dir / "noise.flac"), k=2)
    assert same[0].path == str(sound_dir / "noise.flac") and same[0].score == pytest.approx(1.0, abs=1e-4)
    like = svc.more_like_this(str(sound_dir / "noise.flac"), k=3)
    assert len(like) == 3 and str(sound_dir / "noise.flac") not in [h.path for h in like]
    assert all(h.modality == "audio" for h in like)


def test_audio_to_image_and_image_to_audio_go_through_the_bridge(svc, sound_dir):  # noqa: F811
    photos = svc.search_audio(str(sound_dir / "chirp.ogg"), k=3, modality="image")
    assert len(photos) == 3 and all(h.modality == "image" for h in photos)
    assert svc.bridge().path.is_file()  # fitted and saved on first use
    # The same ranking by hand: CLAP vector -> bridge -> cosine against every photo.
    bridge = svc.bridge().get()
    mapped = bridge.project(svc.audio_encoder.encode_audio_query(str(sound_dir / "chirp.ogg")), "audio->image")[0]
    table = svc.searcher.table()
    rows = table.table.to_arrow().to_pylist()
    best = max(rows, key=lambda r: float(np.asarray(r["vector"]) @ mapped))
    assert photos[0].path == best["path"]
    sounds = svc.search_image(str(sound_dir / "photos" / "img0.jpg"), k=4, modality="audio")
    assert {h.modality for h in sounds} == {"audio"} and len(sounds) == 4
    recorded = svc.search_audio((48_000, (np.random.default_rng(1).standard_normal(48_000) * 3000).astype(np.int16)),
                                k=2, modality="image")
    assert len(recorded) == 2  # a microphone recording, as the UI hands it over


def test_all_targets_mix_photos_and_sounds(svc, sound_dir):  # noqa: F811
    from mmsearch.query.parts import QueryOptions, QueryPart

    part = QueryPart("audio", str(sound_dir / "tone.wav"))
    answer = svc.query([part], QueryOptions(k=20, targets=("image", "audio")))
    assert {h.result.modality for h in answer.hits} == {"image", "audio"} and len(answer.hits) == 11


def test_without_audio_model_the_bridge_says_why(settings):
    with pytest.raises(MMSearchError, match="offline"):
        MMSearch(settings).bridge()
    with pytest.raises(MMSearchError, match="audio is turned off"):
        MMSearch(settings.model_copy(update={"audio": False})).bridge()
