"""open_clip families beyond ViT-B-32, each a tiny random twin of its real architecture, saved like real
weights and loaded back through the production loader: SigLIP, SigLIP 2, MobileCLIP, multilingual CLIP."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from mmsearch.encoders.openclip import OpenCLIPEncoder
from mmsearch.errors import WeightsNotFound
from mmsearch.service import MMSearch
from tests import zoo_support as zs


def _enc(model: str | Path, models_dir: Path, **kw) -> OpenCLIPEncoder:
    return OpenCLIPEncoder(str(model), None, models_dir=models_dir, offline=True, device="cpu", **kw)


@pytest.fixture(scope="module")
def siglip_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("zoo") / "tiny-siglip"
    tok = zs.t5_tokenizer(folder)
    return zs.save_open_clip(folder, zs.siglip_cfg(len(zs_tokenizer(tok)), "timm/ViT-B-16-SigLIP"))


@pytest.fixture(scope="module")
def siglip2_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("zoo") / "tiny-siglip2"
    tok = zs.gemma_tokenizer(folder)
    return zs.save_open_clip(folder, zs.siglip_cfg(len(zs_tokenizer(tok)), "timm/ViT-B-16-SigLIP2", siglip2=True))


@pytest.fixture(scope="module")
def mobileclip_dir(tmp_path_factory) -> Path:
    # spread: trained-like layer scales and BatchNorm statistics, so different images get different vectors
    return zs.save_open_clip(tmp_path_factory.mktemp("zoo") / "tiny-mobileclip", zs.mobileclip_cfg(), spread=True)


@pytest.fixture(scope="module")
def xlmr_models(tmp_path_factory) -> tuple[Path, Path]:
    """(models_dir with xlm-roberta-base/ config + tokenizer, the CLIP folder naming it)."""
    models = tmp_path_factory.mktemp("zoo-models")
    hf = models / "xlm-roberta-base"
    tok = zs.xlmr_tokenizer(hf)
    zs.tiny_xlmr_config(hf, len(zs_tokenizer(tok)))
    cfg = zs.xlmr_clip_cfg()
    text_cfg = {**cfg["model_cfg"]["text_cfg"], "hf_model_name": str(hf), "hf_model_pretrained": False}
    folder = zs.save_open_clip(models / "tiny-xlmr-clip", cfg, text_cfg=text_cfg)
    return models, folder


def zs_tokenizer(folder: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(folder)


def test_siglip_loads_with_its_local_tokenizer(siglip_dir, tmp_path):
    enc = _enc(siglip_dir, tmp_path)
    assert enc.space.dim == 32 and not enc.loaded
    vecs = enc.encode_text(["a photo of a dog", "a red car"])
    assert vecs.shape == (2, 32) and not np.allclose(vecs[0], vecs[1])
    from open_clip.tokenizer import HFTokenizer

    assert isinstance(enc._tokenizer, HFTokenizer)
    assert type(enc._tokenizer.tokenizer).__name__ == "T5Tokenizer"  # the kind SigLIP uses
    assert list(enc._preprocess.transforms[-1].mean) == [0.5, 0.5, 0.5]  # SigLIP's normalisation, from the folder


def test_siglip_tokenizer_found_under_models_dir_or_given_by_path(siglip_dir, tmp_path):
    bare = tmp_path / "bare-siglip"
    bare.mkdir()
    for name in ("open_clip_config.json", "open_clip_model.safetensors"):
        shutil.copy(siglip_dir / name, bare / name)
    with pytest.raises(WeightsNotFound) as err:
        _enc(bare, tmp_path / "models").load()
    assert "timm/ViT-B-16-SigLIP" in str(err.value) and str(tmp_path / "models" / "timm" / "ViT-B-16-SigLIP") in str(err.value)
    reference = _enc(siglip_dir, tmp_path).encode_text(["a dog on the beach"])
    zs.t5_tokenizer(tmp_path / "models" / "timm" / "ViT-B-16-SigLIP")  # where the message said to put it
    np.testing.assert_allclose(_enc(bare, tmp_path / "models").encode_text(["a dog on the beach"]), reference, atol=1e-6)
    by_path = _enc(bare, tmp_path / "elsewhere", tokenizer=str(siglip_dir))
    np.testing.assert_allclose(by_path.encode_text(["a dog on the beach"]), reference, atol=1e-6)


def test_siglip2_uses_a_gemma_tokenizer(siglip2_dir, tmp_path):
    enc = _enc(siglip2_dir, tmp_path)
    assert enc.encode_text(["sunset over the sea"]).shape == (1, 32)
    assert type(enc._tokenizer.tokenizer).__name__ == "GemmaTokenizer"


def test_mobileclip_is_reparameterized_and_matches_the_training_form(mobileclip_dir, tmp_path):
    import open_clip

    enc = _enc(mobileclip_dir, tmp_path)
    enc.load()
    trunk = enc._model.visual.trunk
    assert not any(hasattr(m, "rbr_conv") and m.rbr_conv is not None for m in trunk.modules())  # branches folded
    assert enc.image_size() == 64
    raw = open_clip.create_model(f"local-dir:{mobileclip_dir}").eval()  # the unfolded, training-time form
    x = torch.stack([enc.preprocess_image(im) for im in zs.structured_images(8, 64, seed=5)])
    with torch.inference_mode():
        want = torch.nn.functional.normalize(raw.encode_image(x), dim=-1).numpy()
    got = enc.encode_images(list(x))
    # Folding the branches (and their BatchNorm statistics) must not move a vector by more than float
    # error, far less than the distance between two different pictures' vectors.
    gap = min(np.abs(want[i] - want[j]).max() for i in range(len(want)) for j in range(i))
    err = np.abs(got - want).max()
    assert gap > 0.05 and err < 1e-5, (err, gap)


def test_multilingual_clip_resolves_its_hf_text_tower_locally(xlmr_models, tmp_path):
    models, folder = xlmr_models
    enc = _enc(folder, models)
    vecs = enc.encode_text(["ein Hund am Strand", "un chien sur la plage", "a dog on the beach"])
    assert vecs.shape == (3, 32)
    assert type(enc._model.text.transformer).__name__ == "XLMRobertaModel"
    with pytest.raises(WeightsNotFound, match="xlm-roberta-base"):
        _enc(folder, tmp_path / "empty-models").load()  # neither config nor tokenizer on this machine


def test_preprocessing_follows_the_pretrained_tag():
    enc = OpenCLIPEncoder("ViT-L-14", "laion2b_s32b_b82k", offline=True, device="cpu")
    enc._source = type("S", (), {"open_clip_name": "ViT-L-14", "local_file": None})()  # as if found in the cache
    assert enc._preprocess_override()["image_mean"] == (0.5, 0.5, 0.5)  # not OpenAI's mean, which a file path would get
    assert enc._config()["embed_dim"] == 768


@pytest.mark.parametrize("family", ["siglip", "siglip2", "mobileclip", "xlmr"])
def test_each_family_indexes_and_searches_a_library(family, request, settings, photo_dir):
    if family == "xlmr":
        models, folder = request.getfixturevalue("xlmr_models")
        settings = settings.model_copy(update={"models_dir": models})
    else:
        folder = request.getfixturevalue(f"{family}_dir")
    svc = MMSearch(settings.model_copy(update={"model": str(folder), "audio": False}))
    report = svc.index([photo_dir])
    assert report.embedded == 7 and not report.skipped
    hits = svc.search_text("a dog on the beach", k=3)
    assert len(hits) == 3
    first = str(photo_dir / "img0.jpg")
    hits = svc.search_image(first, k=7)
    own = next(h for h in hits if h.path == first)
    assert own.score >= hits[0].score - 1e-4  # itself on top (random tiny towers may tie with others)
