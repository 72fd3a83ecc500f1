"""Tiny random-weight twins of the model zoo's real architectures, saved in the layout real weights have.

- open_clip families: the same config keys as the built-in configs (timm towers, HF text towers, HF
  tokenizers), with small widths. timm has no tiny SigLIP ViT or FastViT-MCi, so two test-only variants
  are registered with timm below: the same classes and block types as vit_base_patch16_siglip_224 and
  fastvit_mci0, only smaller.
- Tokenizers of the same kind as the real ones, built locally: a T5-style unigram (SigLIP), a Gemma-style
  BPE (SigLIP 2), an XLM-R unigram (multilingual CLIP).
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import torch

WORDS = ["a", "photo", "of", "dog", "cat", "on", "the", "beach", "red", "car", "dress", "in", "but", "this",
         "hund", "am", "strand", "chien", "sur", "la", "plage", "sunset", "sea", "city"]
CHARS = sorted(set("".join(WORDS)) | set("abcdefghijklmnopqrstuvwxyz0123456789"))


def _register_tiny_timm_models() -> None:
    import timm
    from timm.models import register_model
    from timm.models.fastvit import RepConditionalPosEnc, _create_fastvit
    from timm.models.vision_transformer import _create_vision_transformer

    if "vit_tiny_patch8_siglip_test" in timm.list_models("*_test"):
        return

    @register_model
    def vit_tiny_patch8_siglip_test(pretrained: bool = False, **kwargs):
        args = dict(img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2, class_token=False, global_pool="map")
        return _create_vision_transformer("vit_base_patch16_siglip_224", pretrained=pretrained, **dict(args, **kwargs))

    @register_model
    def fastvit_mci_tiny_test(pretrained: bool = False, **kwargs):
        args = dict(layers=(1, 1, 1, 1), embed_dims=(8, 16, 32, 64), mlp_ratios=(3, 3, 3, 3),
                    se_downsamples=(False, False, True, True),
                    pos_embs=(None, None, None, partial(RepConditionalPosEnc, spatial_shape=(7, 7))),
                    token_mixers=("repmixer", "repmixer", "repmixer", "attention"), lkc_use_act=True)
        return _create_fastvit("fastvit_mci0", pretrained=pretrained, **dict(args, **kwargs))


_register_tiny_timm_models()


def t5_tokenizer(folder: Path) -> Path:
    """A SentencePiece-unigram tokenizer of the T5 kind, as timm/ViT-B-16-SigLIP ships."""
    from transformers import T5Tokenizer

    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)] + _unigram_pieces()
    T5Tokenizer(vocab=vocab, extra_ids=0).save_pretrained(folder)
    return folder


def xlmr_tokenizer(folder: Path) -> Path:
    """A SentencePiece-unigram tokenizer of the XLM-R kind, as xlm-roberta-base ships."""
    from transformers import XLMRobertaTokenizer

    vocab = [("<s>", 0.0), ("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)] + _unigram_pieces() + [("<mask>", 0.0)]
    XLMRobertaTokenizer(vocab=vocab).save_pretrained(folder)
    return folder


def gemma_tokenizer(folder: Path) -> Path:
    """A byte-fallback BPE tokenizer of the Gemma kind, as timm/ViT-B-16-SigLIP2 ships."""
    from transformers import GemmaTokenizer

    specials = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>"]
    pieces = specials + ["▁"] + CHARS + [f"<0x{i:02X}>" for i in range(256)]
    vocab = {p: i for i, p in enumerate(dict.fromkeys(pieces))}
    GemmaTokenizer(vocab=vocab, merges=[]).save_pretrained(folder)
    return folder


def _unigram_pieces() -> list[tuple[str, float]]:
    return [(f"▁{w}", -2.0 - i * 0.01) for i, w in enumerate(WORDS)] + [("▁", -3.0)] + \
           [(c, -5.0) for c in CHARS]


def tiny_xlmr_config(folder: Path, vocab_size: int) -> Path:
    from transformers import XLMRobertaConfig

    XLMRobertaConfig(vocab_size=vocab_size, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=64, pad_token_id=1).save_pretrained(folder)
    return folder


PREPROCESS = {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5], "interpolation": "bicubic", "resize_mode": "squash"}


def siglip_cfg(vocab_size: int, tokenizer: str, siglip2: bool = False) -> dict:
    text = {"context_length": 16, "vocab_size": vocab_size, "hf_tokenizer_name": tokenizer,
            "tokenizer_kwargs": {"clean": "canonicalize"}, "width": 32, "heads": 2, "layers": 2,
            "no_causal_mask": True, "proj_bias": True, "pool_type": "last", "norm_kwargs": {"eps": 1e-6}}
    if siglip2:
        text["act_kwargs"] = {"approximate": "tanh"}
    vision = {"image_size": 32, "timm_model_name": "vit_tiny_patch8_siglip_test", "timm_model_pretrained": False,
              "timm_pool": "map", "timm_proj": "none"}
    return {"model_cfg": {"embed_dim": 32, "init_logit_bias": -10, "custom_text": True, "vision_cfg": vision,
                          "text_cfg": text}, "preprocess_cfg": PREPROCESS}


def mobileclip_cfg() -> dict:
    vision = {"timm_model_name": "fastvit_mci_tiny_test", "timm_model_pretrained": False, "timm_pool": "avg",
              "timm_proj": None, "timm_drop": 0.0, "timm_drop_path": 0.0, "image_size": 64}
    text = {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1, "no_causal_mask": True}
    return {"model_cfg": {"embed_dim": 64, "vision_cfg": vision, "text_cfg": text, "custom_text": True},
            "preprocess_cfg": {"mean": [0, 0, 0], "std": [1, 1, 1], "interpolation": "bilinear",
                               "resize_mode": "shortest"}}


def xlmr_clip_cfg(hf_name: str = "xlm-roberta-base") -> dict:
    vision = {"image_size": 32, "layers": 1, "width": 64, "patch_size": 8}
    text = {"hf_model_name": hf_name, "hf_tokenizer_name": hf_name, "hf_pooler_type": "mean_pooler",
            "context_length": 16}
    return {"model_cfg": {"embed_dim": 32, "vision_cfg": vision, "text_cfg": text}}


def save_open_clip(folder: Path, cfg: dict, seed: int = 0, spread: bool = False, **model_kwargs) -> Path:
    """Build the config's architecture with random weights (before any reparameterisation) and save it.

    spread=True: weights whose image vectors differ from image to image (see `spread_out`), for tests that
    compare rankings or outputs of different images."""
    import open_clip
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "open_clip_config.json").write_text(json.dumps(cfg))
    torch.manual_seed(seed)
    model = open_clip.create_model(f"local-dir:{folder}", load_weights=False, **model_kwargs)
    if spread:
        spread_out(model, int(cfg["model_cfg"]["vision_cfg"]["image_size"]))
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "open_clip_model.safetensors"))
    return folder


def structured_images(n: int, size: int = 64, seed: int = 0) -> list:
    """Distinct pictures (a two-colour gradient under a few coloured discs), unlike uniform noise, which
    every model sees as the same grey texture."""
    from PIL import Image, ImageDraw
    import numpy as np

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        a, b = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
        ramp = np.linspace(0, 1, size)[None, :, None]
        img = Image.fromarray((a * (1 - ramp) + b * ramp).repeat(size, 0).astype(np.uint8))
        draw = ImageDraw.Draw(img)
        for _ in range(int(rng.integers(1, 5))):
            x, y = (int(v) for v in rng.integers(0, size, 2))
            r = int(rng.integers(size // 12, size // 3))
            draw.ellipse([x - r, y - r, x + r, y + r], fill=tuple(int(c) for c in rng.integers(0, 256, 3)))
        out.append(img)
    return out


def spread_out(model: torch.nn.Module, image_size: int) -> None:
    """Random weights, changed where a fresh init makes every image look alike to the image tower.

    At init timm's layer scales (1e-5) switch the residual branches off and BatchNorm holds the identity
    statistics (mean 0, variance 1): a MobileCLIP tower then gives any two images vectors with cosine
    >= 0.99997. Here the layer scales are 1 and the BatchNorm statistics are those of real inputs (a
    calibration pass over structured pictures, as training leaves them), so the vectors spread out (tiny
    MobileCLIP: pairwise cosines -0.42 to 0.78, median 0.21) while the architecture stays the real one.
    A ViT tower has neither; open_clip's ViT vectors of structured pictures are spread as they are."""
    from torchvision.transforms.functional import pil_to_tensor

    visual = model.visual
    with torch.no_grad():
        for module in visual.modules():
            if type(module).__name__.startswith("LayerScale"):
                for p in module.parameters(recurse=False):
                    p.fill_(1.0)
        norms = [m for m in visual.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
        if norms:
            for bn in norms:
                bn.reset_running_stats()
                bn.momentum = None  # a plain average over the calibration batches
            pixels = torch.stack([pil_to_tensor(im).float() / 255 for im in structured_images(32, image_size, 99)])
            visual.train()
            for i in range(0, len(pixels), 8):
                visual(pixels[i:i + 8])
            visual.eval()
            for bn in norms:
                bn.momentum = 0.1



def clip_bpe_tokenizer():
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import CLIPTokenizer

    chars = sorted(ByteLevel.alphabet())
    vocab = {t: i for i, t in enumerate(["<|startoftext|>", "<|endoftext|>"] + chars + [c + "</w>" for c in chars])}
    return CLIPTokenizer(vocab=vocab, merges=[])


def make_tiny_bge_vl(folder: Path, seed: int = 0) -> Path:
    """A BGE-VL-shaped repo: a transformers CLIPModel (the MMRet_CLIP architecture) + CLIP processor files."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    tok = clip_bpe_tokenizer()
    torch.manual_seed(seed)
    config = CLIPConfig(
        text_config=dict(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, max_position_embeddings=64, bos_token_id=0, eos_token_id=1,
                         pad_token_id=1),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                           image_size=32, patch_size=8),
        projection_dim=24)
    CLIPModel(config).save_pretrained(folder)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


QWEN_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                 "<|image_pad|>", "<|video_pad|>"]


def make_tiny_jina_v4(folder: Path, seed: int = 0) -> Path:
    """The layout of jinaai/jina-embeddings-v4-vllm-retrieval: Qwen2.5-VL weights + its processor files."""
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import (Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLProcessor,
                              Qwen2TokenizerFast, Qwen2VLImageProcessor, Qwen2VLVideoProcessor)

    vocab = {c: i for i, c in enumerate(sorted(ByteLevel.alphabet()))}
    tok = Qwen2TokenizerFast(vocab=vocab, merges=[], unk_token=None, eos_token="<|endoftext|>", pad_token="<|endoftext|>")
    tok.add_special_tokens({"additional_special_tokens": QWEN_SPECIALS[1:]})
    ids = dict(zip(QWEN_SPECIALS, tok.convert_tokens_to_ids(QWEN_SPECIALS)))
    config = Qwen2_5_VLConfig(
        text_config=dict(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=512,
                         rope_scaling={"type": "mrope", "mrope_section": [4, 6, 6]}, tie_word_embeddings=True,
                         bos_token_id=None, eos_token_id=ids["<|endoftext|>"]),
        vision_config=dict(depth=1, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=64,
                           patch_size=14, spatial_merge_size=2, temporal_patch_size=2, window_size=56,
                           fullatt_block_indexes=[0]),
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"])
    torch.manual_seed(seed)
    Qwen2_5_VLForConditionalGeneration(config).save_pretrained(folder)
    images = Qwen2VLImageProcessor(min_pixels=28 * 28 * 4, max_pixels=28 * 28 * 16)
    Qwen2_5_VLProcessor(image_processor=images, tokenizer=tok, video_processor=Qwen2VLVideoProcessor()).save_pretrained(folder)
    return folder
