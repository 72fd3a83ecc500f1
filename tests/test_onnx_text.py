"""The torch-free text path: open_clip's tokenizer on HF tokenizers, the text tower in ONNX Runtime."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import open_clip
import pytest
from open_clip.tokenizer import SimpleTokenizer, default_bpe

from mmsearch.encoders.clip_bpe import ClipBpeTokenizer, build_tokenizer_json
from mmsearch.encoders.onnx_text import OnnxTextEncoder, TextExportMissing, find_text_export
from mmsearch.encoders.onnx_text_export import TextExportUnsupported, export_text_query_path
from mmsearch.encoders.openclip import OpenCLIPEncoder
from tests import zoo_support as zs
from tests.conftest import make_tiny_model_dir

ROOT = Path(__file__).resolve().parent.parent
CLOSE = 1e-4
TEXTS = [
    "a cat", "", "   ", "A Photo of THE Eiffel Tower!!!", "naïve café — résumé", "東京の夜景",
    "😀🐱 emoji 👍🏽", "don't you're we've I'm they'll he'd it's", "&amp; &lt;b&gt; html &quot;x&quot;",
    "schÃ¶n (mojibake ftfy fixes)",
    "<end_of_text> inside", "!!<end_of_text>", "a<start_of_text>b", "<END_OF_TEXT>", "numbers 1234567 3.14 1,000",
    "tab\tnew\nline\u200bzero-width", "x" * 300, "word " * 100, "Ελληνικά и русский текст", "العربية", "हिन्दी",
    "mixed_under_score-dash/slash", "'S 'T uppercase 'RE", "l'été ß ﬁ ligature İstanbul",
]


def _random_texts(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    codes = [*range(32, 127), *range(0xA0, 0x250), *range(0x400, 0x450), *range(0x3040, 0x30FF),
             0x1F600, 0x1F431, 0x200B, 0xFEFF, 0x301, 0x26]  # ASCII, Latin, Cyrillic, kana, emoji, odd marks
    alphabet = [chr(c) for c in codes]
    return ["".join(rng.choice(alphabet, size=int(rng.integers(1, 60)))) for _ in range(n)]


@pytest.fixture(scope="module")
def tokenizer_json(tmp_path_factory) -> Path:
    return build_tokenizer_json(Path(default_bpe()), tmp_path_factory.mktemp("tok") / "tokenizer.json")


@pytest.mark.parametrize("clean", ["lower", "whitespace", "canonicalize"])
def test_tokens_equal_open_clip(tokenizer_json, clean):
    texts = TEXTS + _random_texts(400)
    want = SimpleTokenizer(clean=clean)(texts).numpy()
    got = ClipBpeTokenizer(tokenizer_json, clean=clean)(texts)
    bad = [t for t, a, b in zip(texts, want, got) if not np.array_equal(a, b)]
    assert not bad, bad[:5]
    if clean == "lower":
        np.testing.assert_array_equal(got[: len(TEXTS)], open_clip.tokenize(TEXTS).numpy())
        assert got[TEXTS.index("word " * 100)][-1] == 49407  # truncated: the last id is still end-of-text


def test_tokens_follow_the_context_length(tokenizer_json):
    got = ClipBpeTokenizer(tokenizer_json, context_length=16)(["word " * 40, "a cat"])
    np.testing.assert_array_equal(got, SimpleTokenizer(context_length=16)(["word " * 40, "a cat"]).numpy())


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> tuple[OpenCLIPEncoder, Path]:
    root = tmp_path_factory.mktemp("onnx-text")
    enc = OpenCLIPEncoder(str(make_tiny_model_dir(root / "tiny-clip")), None, models_dir=root / "models",
                          offline=True, device="cpu")
    return enc, export_text_query_path(enc, root / "cache")


def test_export_matches_torch_and_runs_on_the_real_length(exported):
    enc, manifest_path = exported
    manifest = json.loads(manifest_path.read_text())
    assert manifest["trim"]["pool"] == "argmax" and manifest["max_abs_diff"] <= CLOSE
    assert manifest["space_id"] == enc.space.id
    onnx = OnnxTextEncoder(manifest_path, threads=1)
    assert onnx.space == enc.space and onnx.supports("text") and not onnx.supports("image")
    texts = TEXTS + ["an astronaut riding a horse", "dog"]
    want = enc.encode_text(texts)
    tokens = enc._tokenizer(texts).numpy()
    seen = {tuple(row[: row.argmax() + 1]): i for i, row in enumerate(tokens)}  # "" and "   " pool alike
    rows = want[sorted(seen.values())]
    gaps = np.linalg.norm(rows[:, None] - rows[None], axis=-1)[~np.eye(len(rows), dtype=bool)]
    assert gaps.min() > 100 * CLOSE  # different texts differ by far more than the tolerance
    assert np.abs(onnx.encode_text(texts) - want).max() <= CLOSE  # a mixed batch
    for text in ["dog", "an astronaut riding a horse", "word " * 100]:  # lengths 3, 6, the whole context
        assert np.abs(onnx.encode_text([text]) - enc.encode_text([text])).max() <= CLOSE
    np.testing.assert_array_equal(onnx.tokenize(texts), enc._tokenizer(texts).numpy())


def test_export_is_cached_by_weights_and_found_by_space(exported, tmp_path):
    enc, manifest_path = exported
    onnx_file = manifest_path.parent / json.loads(manifest_path.read_text())["onnx"]
    stamp = onnx_file.stat().st_mtime_ns
    assert export_text_query_path(enc, manifest_path.parent) == manifest_path
    assert onnx_file.stat().st_mtime_ns == stamp  # not exported again
    assert find_text_export(manifest_path.parent, enc.space.id) == manifest_path
    assert find_text_export(manifest_path.parent, "open_clip_some_other_space") is None
    assert find_text_export(tmp_path / "nowhere", enc.space.id) is None


def test_incomplete_export_is_not_used(exported, tmp_path):
    enc, manifest_path = exported
    copy = tmp_path / manifest_path.name
    copy.write_text(manifest_path.read_text())  # the manifest without its tower and tokenizer
    assert find_text_export(tmp_path, enc.space.id) is None
    with pytest.raises(TextExportMissing, match="incomplete; index again"):
        OnnxTextEncoder(copy)


def test_text_query_without_torch_in_a_subprocess(exported, tmp_path):
    enc, manifest_path = exported
    texts = ["a cat", "東京の夜景 😀", "don't &amp; stop!!", "word " * 100]
    script = (
        "import json, sys\n"
        "import numpy as np\n"
        "from mmsearch.encoders.onnx_text import OnnxTextEncoder, find_text_export\n"
        f"path = find_text_export({str(manifest_path.parent)!r}, {enc.space.id!r})\n"
        "enc = OnnxTextEncoder(path)\n"
        f"texts = json.loads({json.dumps(json.dumps(texts))})\n"
        f"np.save({str(tmp_path / 'vecs.npy')!r}, enc.encode_text(texts))\n"
        f"np.save({str(tmp_path / 'tokens.npy')!r}, enc.tokenize(texts))\n"
        "heavy = sorted(m for m in ('torch', 'open_clip', 'transformers', 'timm') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
        "print('ok')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]
    np.testing.assert_array_equal(np.load(tmp_path / "tokens.npy"), open_clip.tokenize(texts, context_length=16))
    assert np.abs(np.load(tmp_path / "vecs.npy") - enc.encode_text(texts)).max() <= CLOSE


def test_non_causal_clip_bpe_tower_exports_with_padding(tmp_path):
    folder = zs.save_open_clip(tmp_path / "tiny-mobileclip", zs.mobileclip_cfg())
    enc = OpenCLIPEncoder(str(folder), None, models_dir=tmp_path / "models", offline=True, device="cpu")
    manifest_path = export_text_query_path(enc, tmp_path / "cache")
    assert json.loads(manifest_path.read_text())["trim"] is None  # bidirectional: every position counts
    texts = ["a dog", "an astronaut riding a horse", "x"]
    assert np.abs(OnnxTextEncoder(manifest_path).encode_text(texts) - enc.encode_text(texts)).max() <= CLOSE


def test_hf_tokenizer_models_are_refused_with_a_reason(tmp_path):
    folder = tmp_path / "tiny-siglip"
    from transformers import AutoTokenizer

    tok = zs.t5_tokenizer(folder)
    zs.save_open_clip(folder, zs.siglip_cfg(len(AutoTokenizer.from_pretrained(tok)), "timm/ViT-B-16-SigLIP"))
    enc = OpenCLIPEncoder(str(folder), None, models_dir=tmp_path / "models", offline=True, device="cpu")
    with pytest.raises(TextExportUnsupported, match="uses a HFTokenizer; the torch-free text path covers"):
        export_text_query_path(enc, tmp_path / "cache")
    assert not (tmp_path / "cache").exists()  # nothing half-written
