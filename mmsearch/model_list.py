"""Known models and whether their weights are on this machine."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import open_clip

from mmsearch.encoders.hf_weights import resolve_hf_folder
from mmsearch.encoders.weights import CONFIG_NAME, resolve_weights
from mmsearch.errors import MMSearchError

# (model, pretrained, why it is listed)
CURATED = [
    ("ViT-B-32", "laion2b_s34b_b79k", "default: best quality per CPU second among the classic CLIPs"),
    ("ViT-B-32", "openai", "the original CLIP"),
    ("ViT-B-16", "laion2b_s34b_b88k", "finer patches, ~4x the compute of B-32"),
    ("ViT-L-14", "laion2b_s32b_b82k", "large; practical on a GPU"),
    ("ViT-B-16-SigLIP", "webli", "SigLIP"),
    ("ViT-B-16-SigLIP2", "webli", "SigLIP 2"),
    ("MobileCLIP-S2", "datacompdr", "fast on CPU"),
    ("MobileCLIP2-S2", "dfndr2b", "fast on CPU"),
    ("xlm-roberta-base-ViT-B-32", "laion5b_s13b_b90k", "multilingual text tower"),
]


# Sounds (CLAP): (Hugging Face repo, why it is listed); all three embed into 512 dimensions.
CLAP_CURATED = [
    ("laion/clap-htsat-unfused", "default for sounds: general audio, 10 s windows"),
    ("laion/larger_clap_general", "larger, trained on more general audio"),
    ("laion/larger_clap_music_and_speech", "larger, for music and speech"),
]


@dataclass
class ModelInfo:
    encoder: str
    model: str
    pretrained: str
    dim: int | None
    local: bool
    note: str

    def to_dict(self) -> dict:
        return self.__dict__.copy()


def _is_local(model: str, pretrained: str, models_dir: Path) -> bool:
    try:
        return resolve_weights(model, pretrained, models_dir, None, offline=True).is_local
    except MMSearchError:
        return False


def _clap_is_local(repo: str, models_dir: Path) -> bool:
    try:
        resolve_hf_folder(repo, "clap", models_dir, None, offline=True)
    except MMSearchError:
        return False
    return True


def known_models(models_dir: Path, include_all: bool = False) -> list[ModelInfo]:
    pairs = [(m, t, note) for m, t, note in CURATED]
    if include_all:
        listed = {(m, t) for m, t, _ in CURATED}
        pairs += [(m, t, "") for m, t in open_clip.list_pretrained() if (m, t) not in listed]
    out = [ModelInfo("clap", repo, "(hub)", 512, _clap_is_local(repo, models_dir), note) for repo, note in CLAP_CURATED]
    for model, tag, note in pairs:
        cfg = open_clip.get_model_config(model) or {}
        out.append(ModelInfo("open-clip", model, tag, cfg.get("embed_dim"), _is_local(model, tag, models_dir), note))
    if models_dir.is_dir():
        for cfg_file in sorted(models_dir.glob(f"*/{CONFIG_NAME}")) + sorted(models_dir.glob(f"*/*/{CONFIG_NAME}")):
            folder = cfg_file.parent
            out.append(ModelInfo("open-clip", str(folder), "(local folder)", None,
                                 _is_local(str(folder), "", models_dir), "copied in by hand"))
    return out
