"""Causal OpenCLIP text towers run on the real token length and give exactly the padded answer.

Every text-tower family open_clip ships (grouped by everything in text_cfg except sizes) is built small with
random weights; a causal, token-pooled tower must run on the batch's real length and agree with open_clip's
own padded encode_text, and every other tower must keep its padding.
"""

from __future__ import annotations

import copy
import json

import numpy as np
import open_clip
import pytest
import torch
import torch.nn.functional as F

from mmsearch.encoders.causal_text import causal_text
from mmsearch.encoders.openclip import OpenCLIPEncoder

SIZE_KEYS = {"width", "heads", "layers", "mlp_ratio", "context_length", "vocab_size", "hf_tokenizer_name",
             "tokenizer_kwargs"}
TINY_VISION = {"image_size": 32, "layers": 1, "width": 64, "patch_size": 16}
TOLERANCE = 1e-5
PREFERRED = ["ViT-B-32", "ViT-L-14", "MobileCLIP-B", "MobileCLIP-S1", "ViT-B-16-SigLIP", "coca_ViT-B-32"]


def _families() -> dict[str, str]:
    """One model name per distinct non-HF text tower (text_cfg without sizes, + custom_text, + CoCa)."""
    seen: dict[str, str] = {}
    for name in [*PREFERRED, *open_clip.list_models()]:
        cfg = open_clip.get_model_config(name)
        text = cfg.get("text_cfg", {})
        if "hf_model_name" in text:
            continue  # Hugging Face text towers: test_hf_text_tower_keeps_padding
        key = json.dumps({**{k: v for k, v in text.items() if k not in SIZE_KEYS},
                          "custom_text": bool(cfg.get("custom_text")), "coca": "multimodal_cfg" in cfg},
                         sort_keys=True)
        seen.setdefault(key, name)
    return {name: key for key, name in seen.items()}


FAMILIES = _families()


def _is_causal_by_config(name: str) -> bool:
    """Decided from the config alone, independently of the code under test."""
    cfg = open_clip.get_model_config(name)
    text = cfg["text_cfg"]
    return (not text.get("no_causal_mask", False) and not text.get("embed_cls", False)
            and "multimodal_cfg" not in cfg and text.get("pool_type", "argmax") in ("argmax", "eos"))


def _tiny(name: str, **text_over) -> torch.nn.Module:
    cfg = open_clip.get_model_config(name)
    text = {**cfg["text_cfg"], "width": 64, "heads": 2, "layers": 2, **text_over}
    text.pop("hf_tokenizer_name", None)
    extra = {}
    if "multimodal_cfg" in cfg:
        extra["multimodal_cfg"] = {**cfg["multimodal_cfg"], "width": 64, "heads": 2, "layers": 1}
    torch.manual_seed(0)
    model = open_clip.create_model(name, embed_dim=32, vision_cfg=TINY_VISION, text_cfg=text, **extra)
    return model.eval()


def _tokens(name: str, lengths: list[int], seed: int = 0) -> torch.Tensor:
    """Token rows as the model's tokenizer lays them out: [sot] body [eot] then zero padding."""
    text = open_clip.get_model_config(name)["text_cfg"]
    ctx, vocab = text.get("context_length", 77), text.get("vocab_size", 49408)
    pool, eos = text.get("pool_type", "argmax"), text.get("eos_id", 2)
    eot = vocab - 1 if pool != "eos" else eos
    rng = np.random.default_rng(seed)
    rows = torch.zeros(len(lengths), ctx, dtype=torch.long)
    for i, n in enumerate(lengths):
        n = min(n, ctx)
        body = rng.integers(3, vocab - 2, size=n)
        body[0] = vocab - 2 if pool != "eos" else 0
        body[n - 1] = eot
        rows[i, :n] = torch.from_numpy(body)
    return rows


def _encode_padded(model: torch.nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return F.normalize(model.encode_text(tokens).float(), dim=-1)


def _encode_trimmed(model: torch.nn.Module, tokens: torch.Tensor) -> tuple[torch.Tensor, list[int]]:
    tower = causal_text(model)
    assert tower is not None
    lengths: list[int] = []
    hook = tower.transformer.register_forward_pre_hook(lambda _m, args: lengths.append(args[0].shape[1]))
    try:
        with torch.inference_mode():
            return F.normalize(tower.encode(tokens).float(), dim=-1), lengths
    finally:
        hook.remove()


CAUSAL = [n for n in FAMILIES if _is_causal_by_config(n)]
NOT_CAUSAL = [n for n in FAMILIES if not _is_causal_by_config(n)]


def test_the_zoo_has_both_kinds_of_tower():
    assert {"ViT-B-32", "MobileCLIP-B"} <= set(CAUSAL), CAUSAL  # a CLIP tower and a custom-text one
    assert any(open_clip.get_model_config(n)["text_cfg"].get("pool_type") == "eos" for n in CAUSAL), CAUSAL
    assert {"ViT-B-16-SigLIP", "MobileCLIP-S1", "coca_ViT-B-32"} <= set(NOT_CAUSAL), NOT_CAUSAL


@pytest.mark.parametrize("name", CAUSAL)
def test_causal_tower_runs_on_real_length_and_matches_padding(name):
    model = _tiny(name)
    ctx = open_clip.get_model_config(name)["text_cfg"].get("context_length", 77)
    lengths = [3, 9, 5, 2]
    tokens = _tokens(name, lengths)
    want = _encode_padded(model, tokens)
    got, ran = _encode_trimmed(model, tokens)
    assert ran == [max(lengths)] and max(lengths) < ctx  # ran on 9 positions, not the context
    assert float((got - want).abs().max()) <= TOLERANCE
    gaps = torch.cdist(want, want)[~torch.eye(len(lengths), dtype=torch.bool)]
    assert float(gaps.min()) > 1000 * TOLERANCE  # different texts are far apart: the tolerance means something
    for i in range(len(lengths)):  # alone, each row runs on its own length and still matches
        alone, ran = _encode_trimmed(model, tokens[i:i + 1])
        assert ran == [lengths[i]] and float((alone[0] - want[i]).abs().max()) <= TOLERANCE


@pytest.mark.parametrize("name", CAUSAL[:2])
def test_text_longer_than_the_context_runs_on_the_whole_context(name):
    model = _tiny(name)
    ctx = open_clip.get_model_config(name)["text_cfg"].get("context_length", 77)
    tokens = _tokens(name, [ctx + 20, 4])
    got, ran = _encode_trimmed(model, tokens)
    assert ran == [ctx] and float((got - _encode_padded(model, tokens)).abs().max()) <= TOLERANCE


@pytest.mark.parametrize("name", NOT_CAUSAL)
def test_non_causal_towers_keep_padding(name):
    assert causal_text(_tiny(name)) is None


def test_a_causal_tower_pooled_at_the_last_position_keeps_padding():
    """Pooling at position -1 reads a padding position, so trimming would change the answer."""
    model = _tiny("ViT-B-32", pool_type="last")
    assert causal_text(model) is None
    tokens = _tokens("ViT-B-32", [4])
    forced = copy.copy(causal_text(_tiny("ViT-B-32")))
    object.__setattr__(forced, "owner", model)
    object.__setattr__(forced, "pool_type", "last")
    with torch.inference_mode():
        trimmed = F.normalize(forced.forward(tokens[:, :4]).float(), dim=-1)
    assert float((trimmed - _encode_padded(model, tokens)).abs().max()) > 100 * TOLERANCE


def test_hf_text_tower_keeps_padding(tmp_path):
    from tests.zoo_support import tiny_xlmr_config

    folder = tiny_xlmr_config(tmp_path / "xlmr", vocab_size=64)
    text = {"hf_model_name": str(folder), "hf_model_pretrained": False, "hf_pooler_type": "mean_pooler",
            "context_length": 16}
    model = open_clip.create_model("xlm-roberta-base-ViT-B-32", embed_dim=32, vision_cfg=TINY_VISION, text_cfg=text)
    assert causal_text(model) is None


def test_encoder_encodes_on_real_length(tiny_model_dir, tmp_path):
    enc = OpenCLIPEncoder(str(tiny_model_dir), None, models_dir=tmp_path, offline=True, device="cpu")
    texts = ["a dog", "an astronaut riding a horse", "x", "a very long text " * 20]
    got = enc.encode_text(texts)
    model = enc.torch_model
    want = _encode_padded(model, enc._tokenizer(texts)).numpy()
    assert np.abs(got - want).max() <= TOLERANCE
    ran: list[int] = []
    hook = model.transformer.register_forward_pre_hook(lambda _m, args: ran.append(args[0].shape[1]))
    try:
        alone = enc.encode_text(["a dog"])
    finally:
        hook.remove()
    assert ran == [4]  # <sot> a dog <eot>, not the context of 16
    assert np.abs(alone[0] - want[0]).max() <= TOLERANCE
