"""transformers-based zoo encoders: BGE-VL (composed queries), Jina v4 (Matryoshka), the caption text model.

BGE-VL and Jina v4 are tiny random twins of their real architectures (CLIPModel, Qwen2.5-VL) saved in the
layout of their hub repos; the text model is the real all-MiniLM-L6-v2, shipped offline by a pip package.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mmsearch.encoders.bgevl import BGEVLEncoder
from mmsearch.encoders.jina import JinaV4Encoder
from mmsearch.encoders.text import TextEmbedder, prefixes_for
from mmsearch.errors import BadQuery, MMSearchError, WeightsNotFound
from mmsearch.query.parts import QueryOptions, QueryPart, composed_from_cli
from mmsearch.service import MMSearch
from tests import zoo_support as zs
from tests.conftest import write_image


@pytest.fixture(scope="module")
def bge_vl_dir(tmp_path_factory) -> Path:
    return zs.make_tiny_bge_vl(tmp_path_factory.mktemp("zoo") / "tiny-bge-vl")


@pytest.fixture(scope="module")
def jina_dir(tmp_path_factory) -> Path:
    return zs.make_tiny_jina_v4(tmp_path_factory.mktemp("zoo") / "tiny-jina-v4")


def _svc(settings, **update) -> MMSearch:
    return MMSearch(settings.model_copy(update={"audio": False, **update}))


# -- BGE-VL ---------------------------------------------------------------------------------------
def test_bge_vl_loads_the_saved_clip_weights(bge_vl_dir, tmp_path):
    from safetensors.torch import load_file

    enc = BGEVLEncoder(str(bge_vl_dir), models_dir=tmp_path, offline=True, device="cpu")
    assert enc.space.dim == 24 and not enc.loaded
    enc.load()
    saved = load_file(str(bge_vl_dir / "model.safetensors"))
    live = enc._model.state_dict()
    assert type(enc._model).__name__ == "CLIPModel"  # transformers' own class: no remote code ran
    assert all(torch.equal(saved[k], live[k]) for k in saved if k in live)


def _features(out):
    return out if not hasattr(out, "pooler_output") else out.pooler_output


def test_bge_vl_matches_the_clip_model_called_directly(bge_vl_dir, tmp_path):
    # The reference: transformers' CLIPModel and CLIPProcessor loaded again from the folder, as BGE-VL's
    # model card calls them; a composed query is the normalised sum of the unnormalised projected
    # image and text features (MMRet_CLIP.encode_multimodal).
    from PIL import Image
    from transformers import CLIPModel, CLIPProcessor

    model = CLIPModel.from_pretrained(str(bge_vl_dir)).eval()
    processor = CLIPProcessor.from_pretrained(str(bge_vl_dir))
    enc = BGEVLEncoder(str(bge_vl_dir), offline=True, device="cpu")
    images = [Image.open(write_image(tmp_path / f"dress{i}.png", seed=3 + i, size=(40 + 9 * i, 48))) for i in range(3)]
    texts = ["the same dress but in red", "a red car", "but longer"]
    with torch.inference_mode():
        img = _features(model.get_image_features(**processor(images=images, return_tensors="pt")))
        txt = _features(model.get_text_features(**processor(text=texts, padding=True, return_tensors="pt")))
    unit = torch.nn.functional.normalize
    want = {"image": unit(img, dim=-1).numpy(), "text": unit(txt, dim=-1).numpy(),
            "composed": unit(img + txt, dim=-1).numpy()}
    got = {"image": enc.encode_images([enc.preprocess_image(im) for im in images]), "text": enc.encode_text(texts),
           "composed": enc.encode_composed(images, texts)}
    for kind in want:
        w = want[kind]
        gap = min(np.abs(w[i] - w[j]).max() for i in range(3) for j in range(i))
        err = np.abs(got[kind] - w).max()
        assert err < 1e-5 < gap / 10, (kind, err, gap)  # far tighter than the distance between inputs
    assert np.abs(want["composed"] - want["image"]).max() > 1e-2  # the instruction moves the query


def test_composed_query_needs_an_instruction(bge_vl_dir, tmp_path):
    from PIL import Image

    enc = BGEVLEncoder(str(bge_vl_dir), offline=True, device="cpu")
    image = Image.open(write_image(tmp_path / "dress.png", seed=3))
    with pytest.raises(BadQuery, match="instruction"):
        enc.encode_composed([image], [" "])


def test_bge_vl_library_answers_composed_queries_end_to_end(bge_vl_dir, settings, photo_dir):
    svc = _svc(settings, encoder="bge-vl", model=str(bge_vl_dir))
    assert svc.index([photo_dir]).embedded == 7
    ref = str(photo_dir / "img1.png")
    part = composed_from_cli(f"{ref}::but in red")
    assert part.kind == "composed" and part.value == (ref, "but in red")
    answer = svc.query([part, QueryPart("text", "red dress", 0.5)], QueryOptions(k=3, hybrid=False))
    assert len(answer.hits) == 3
    assert any(c.part.startswith("+1 composed:img1.png") for h in answer.hits for c in h.contributions)
    assert svc.search_text("a red car", k=2) and svc.search_image(ref, k=1)[0].path == ref


def test_composed_parts_are_validated(tmp_path):
    with pytest.raises(BadQuery, match="IMAGE::INSTRUCTION"):
        composed_from_cli("dress.jpg")
    with pytest.raises(BadQuery, match="does not exist"):
        composed_from_cli(f"{tmp_path / 'nope.jpg'}::in red")
    with pytest.raises(MMSearchError, match="instruction"):
        QueryPart("composed", ("x.jpg", ""))


def test_bge_vl_missing_offline_says_what_to_copy(tmp_path):
    with pytest.raises(WeightsNotFound) as err:
        BGEVLEncoder("BAAI/BGE-VL-base", models_dir=tmp_path / "models", offline=True, device="cpu").space
    assert "BAAI/BGE-VL-base" in str(err.value) and str(tmp_path / "models" / "BAAI" / "BGE-VL-base") in str(err.value)


# -- Jina v4 --------------------------------------------------------------------------------------
def test_jina_v4_native_architecture_and_matryoshka_space(jina_dir, tmp_path):
    full = JinaV4Encoder(str(jina_dir), offline=True, device="cpu", precision="fp32")
    cut = JinaV4Encoder(str(jina_dir), offline=True, device="cpu", precision="fp32", truncate_dim=32)
    assert full.space.dim == 64 and cut.space.dim == 32
    assert cut.space.model.endswith("@32d") and cut.space.id != full.space.id  # separate tables
    q = full.encode_text(["a dog on the beach"])
    assert type(full._model).__name__ == "Qwen2_5_VLModel"
    np.testing.assert_allclose(cut.encode_text(["a dog on the beach"])[0],
                               q[0, :32] / np.linalg.norm(q[0, :32]), atol=1e-5)
    assert not np.allclose(q, full.encode_documents(["a dog on the beach"]), atol=1e-4)  # Query: vs Passage:
    with pytest.raises(MMSearchError, match="truncate_dim"):
        JinaV4Encoder(str(jina_dir), offline=True, device="cpu", truncate_dim=100).space


def test_jina_v4_image_pooling_covers_the_vision_span(jina_dir, tmp_path):
    from PIL import Image

    enc = JinaV4Encoder(str(jina_dir), offline=True, device="cpu", precision="fp32")
    a = Image.open(write_image(tmp_path / "a.png", seed=1, size=(64, 48)))
    b = Image.open(write_image(tmp_path / "b.png", seed=2, size=(96, 40)))
    batch = enc.encode_images([enc.preprocess_image(a), enc.preprocess_image(b)])
    alone = enc.encode_images([enc.preprocess_image(b)])
    np.testing.assert_allclose(batch[1], alone[0], atol=1e-4)  # padding in a mixed batch changes nothing


def test_jina_v4_library_with_truncated_vectors_end_to_end(jina_dir, settings, photo_dir):
    svc = _svc(settings, encoder="jina-v4", model=str(jina_dir), truncate_dim=32, precision="fp32")
    assert svc.index([photo_dir]).embedded == 7
    status = svc.status()["tables"]
    assert [t["dim"] for t in status] == ["32"]
    assert len(svc.search_text("a dog on the beach", k=3)) == 3


def test_jina_v4_resident_matryoshka_cut_reembeds_nothing(jina_dir, settings, photo_dir, monkeypatch):
    """`mmsearch vectors int8 --dims 32` on a Jina library: the resident copy keeps the first 32 of the stored
    64 dims, searches still answer (rescored with every dimension), status says so; no image is embedded."""
    from mmsearch.cli.vectors import describe
    from mmsearch.search import choice

    monkeypatch.setattr(choice, "REREAD_S", 0.0)
    svc = _svc(settings, encoder="jina-v4", model=str(jina_dir), precision="fp32")
    assert svc.index([photo_dir]).embedded == 7
    full = int(svc.status()["tables"][0]["dim"])
    before = [r.path for r in svc.search_text("a dog on the beach", k=7)]
    calls = []
    monkeypatch.setattr(svc.encoder, "encode_images", lambda *a, **k: calls.append(1))
    svc.set_vectors("int8@32")
    assert sorted(r.path for r in svc.search_text("a dog on the beach", k=7)) == sorted(before) and not calls
    table = svc.searcher.table()
    assert svc.searcher.vectors.snapshot(table).codec.keep == 32
    report = svc.vector_status(measure=True)[0]
    assert report["dims"] == 32 and report["full_dims"] == full and report["measured_in_memory"]
    assert f"first 32 of {full} dims" in describe(report) and "first 32 dims against float32" in describe(report)


def test_jina_v4_original_repo_needs_the_remote_code_opt_in(tmp_path):
    import json

    repo = tmp_path / "jina-embeddings-v4"
    repo.mkdir()
    (repo / "config.json").write_text(json.dumps({"model_type": "jina-embeddings-v4", "auto_map": {}}))
    (repo / "model.safetensors").write_bytes(b"")
    with pytest.raises(MMSearchError, match="--trust-remote-code"):
        JinaV4Encoder(str(repo), offline=True, device="cpu").space


# -- the text model for captions ------------------------------------------------------------------
def test_text_model_ships_offline_and_ranks_by_meaning():
    enc = TextEmbedder("all-MiniLM-L6-v2", offline=True, device="cpu")
    assert enc.space.dim == 384 and enc.space.model == "sentence-transformers/all-MiniLM-L6-v2"
    q = enc.encode_text(["a puppy playing in the sand"])[0]
    docs = enc.encode_documents(["a dog running on the beach", "quarterly tax report", "a red sports car"])
    assert int(np.argmax(docs @ q)) == 0


def test_query_and_document_prefixes_per_family():
    assert prefixes_for("intfloat/multilingual-e5-small").query == "query: "
    assert prefixes_for("intfloat/e5-base-v2").document == "passage: "
    assert prefixes_for("BAAI/bge-small-en-v1.5").query.startswith("Represent this sentence")
    assert prefixes_for("BAAI/bge-small-en-v1.5").document == ""
    assert prefixes_for("sentence-transformers/all-MiniLM-L6-v2").query == ""
    custom = TextEmbedder("intfloat/e5-small-v2", query_prefix="q> ", document_prefix="")
    assert (custom.prefixes.query, custom.prefixes.document) == ("q> ", "")


def test_captions_are_indexed_and_fused_with_the_image_table(settings, tmp_path):
    root = tmp_path / "shop"
    write_image(root / "p1.jpg", seed=1)
    (root / "p1.jpg.txt").write_text("a long red evening dress made of silk")
    write_image(root / "p2.jpg", seed=2)
    (root / "p2.txt").write_text("black leather hiking boots")
    write_image(root / "p3.jpg", seed=3)  # no caption: its file and folder names stand in
    svc = _svc(settings, text_model="sentence-transformers/all-MiniLM-L6-v2")
    report = svc.index([root])
    assert report.embedded == 6 and not report.skipped  # 3 pictures x (image model + text model)
    spaces = {t["encoder"] for t in svc.status()["tables"]}
    assert spaces == {"open-clip", "text-embed"}
    answer = svc.query([QueryPart("text", "gown for a gala")], QueryOptions(k=3, hybrid=False))
    by_table = {c.table.split("__")[1].split("_")[0]: c for c in _contributions(answer, str(root / "p1.jpg"))}
    assert set(by_table) == {"open", "text"}  # fused from both tables
    assert by_table["text"].rank == 1  # the tiny image model is random; the text model is not


def _contributions(answer, path: str) -> list:
    return next(h.contributions for h in answer.hits if h.result.path == path)
