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


def test_audio_to_image_ranking_equals_one_computed_without_mmsearch(svc, audio_settings, tiny_clap_dir, tmp_path):  # noqa: F811
    # The bridge by its definition, from the models called directly (transformers' ClapModel, open_clip)
    # and numpy: the sound's CLAP vector against CLAP's text vectors of "the sound of <caption>", a softmax
    # with CLAP's logit scale over the top 12 captions, the same weights on CLIP's text vectors of
    # "a photo of <caption>", then cosine against every stored photo vector.
    import open_clip
    import soundfile as sf
    import torch
    from transformers import ClapModel, ClapProcessor

    captions = list(dict.fromkeys(line.strip() for line in BRIDGE_VOCABULARY.read_text().splitlines()
                                  if line.strip() and not line.strip().startswith("#")))
    clap, processor = ClapModel.from_pretrained(str(tiny_clap_dir)).eval(), ClapProcessor.from_pretrained(str(tiny_clap_dir))
    clip_name = f"local-dir:{audio_settings.model}"
    clip, tokenize = open_clip.create_model(clip_name).eval(), open_clip.get_tokenizer(clip_name)
    unit = lambda x: x / np.linalg.norm(x, axis=-1, keepdims=True)  # noqa: E731
    feats = lambda out: (out if not hasattr(out, "pooler_output") else out.pooler_output).numpy()  # noqa: E731
    with torch.inference_mode():
        clap_text = unit(feats(clap.get_text_features(
            **processor.tokenizer([f"the sound of {c}" for c in captions], padding=True, return_tensors="pt"))))
        clip_text = unit(clip.encode_text(tokenize([f"a photo of {c}" for c in captions])).numpy())
        clap_scale = float(clap.logit_scale_a.exp())
        query = write_sound(tmp_path / "query.wav", 2.0, kind="chirp")  # one 2 s window at CLAP's 48 kHz
        samples, rate = sf.read(query, dtype="float32")
        mel = processor.feature_extractor([samples], sampling_rate=rate, return_tensors="pt", truncation="rand_trunc")
        sound = unit(feats(clap.get_audio_features(input_features=mel["input_features"], is_longer=mel["is_longer"])))[0]
    sims = clap_text @ sound
    top = np.argsort(-sims)[:12]
    w = np.exp(clap_scale * (sims[top] - sims[top].max()))
    mapped = unit((w / w.sum()) @ clip_text[top])
    rows = svc.searcher.table().table.to_arrow().to_pylist()
    want = sorted(((float(np.dot(r["vector"], mapped)), r["path"]) for r in rows), reverse=True)
    scores = [s for s, _ in want]
    assert min(a - b for a, b in zip(scores, scores[1:])) > 1e-4  # a strict order to compare against

    photos = svc.search_audio(str(query), k=len(rows), modality="image")
    assert [h.path for h in photos] == [p for _, p in want]
    np.testing.assert_allclose([h.score for h in photos], scores, atol=1e-4)
