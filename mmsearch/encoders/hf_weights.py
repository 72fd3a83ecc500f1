"""Where transformers-format weights come from: a folder given by path, models_dir/<repo id>/, the HF cache,
or (online only) the hub, downloaded into the cache first.

Everything resolves to one local folder before loading, and the model then loads with
`local_files_only=True`: an offline machine fails at once with the files to copy and where, instead of
waiting on download retries, and the space label is the weights' sha256 wherever the folder lives.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from mmsearch.encoders.hf_aux import download_repo
from mmsearch.encoders.weights import weights_sha256
from mmsearch.errors import UnknownModel, WeightsNotFound

WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")
SUPPORT_FILES = ("config.json", "preprocessor_config.json", "tokenizer.json", "tokenizer_config.json",
                 "vocab.json", "merges.txt", "special_tokens_map.json", "processor_config.json")
_REPO_ID = re.compile(r"^[\w.-]+/[\w.-]+$")


@dataclass(frozen=True)
class HFFolder:
    folder: Path
    model_label: str  # the repo id, or the folder's name for a folder given by path
    weights: Path

    @property
    def label(self) -> str:
        return f"sha256:{weights_sha256(self.weights)[:16]}"

    @property
    def safetensors(self) -> bool:
        return self.weights.name.startswith("model.safetensors")

    def config(self) -> dict:
        return json.loads((self.folder / "config.json").read_text())


def resolve_hf_folder(model: str, model_type: str, models_dir: Path, cache_dir: str | None,
                      offline: bool, known: tuple[str, ...] = ()) -> HFFolder:
    """Find (or, online, download) a transformers model folder for `model` without loading it."""
    as_path = Path(model).expanduser()
    if as_path.is_dir():
        return _checked(as_path, as_path.name, model_type)
    if (models_dir / model / "config.json").is_file():
        return _checked(models_dir / model, model, model_type)
    if not _REPO_ID.match(model):
        hint = f" Known models: {', '.join(known)}." if known else ""
        raise UnknownModel(f"{model!r} is neither a folder nor a Hugging Face repo id (org/name).{hint}")
    cached = _cached_snapshot(model, cache_dir)
    if cached is not None:
        return _checked(cached, model, model_type)
    if offline:
        raise WeightsNotFound(
            f"{model_type.upper()} weights for {model} are not on this machine and mmsearch is offline. Copy "
            f"config.json, model.safetensors, preprocessor_config.json and the tokenizer files (tokenizer.json, "
            f"tokenizer_config.json, vocab.json, merges.txt) from https://huggingface.co/{model} into "
            f"{models_dir / model}/, or run once with internet access to fill the model cache."
        )
    return _checked(_download(model, cache_dir), model, model_type)


def _checked(folder: Path, label: str, model_type: str) -> HFFolder:
    cfg_file = folder / "config.json"
    if not cfg_file.is_file():
        raise WeightsNotFound(f"model folder {folder} has no config.json; copy the model's files into it")
    found = json.loads(cfg_file.read_text()).get("model_type")
    if found != model_type:
        raise UnknownModel(f"{folder} holds a {found or 'unknown'} model, not {model_type.upper()}")
    weights = next((folder / n for n in WEIGHT_FILES if (folder / n).is_file()), None)
    if weights is None:
        raise WeightsNotFound(f"model folder {folder} has config.json but no weights; copy model.safetensors into it")
    return HFFolder(folder.resolve(), label, weights)


def _cached_snapshot(repo: str, cache_dir: str | None) -> Path | None:
    from huggingface_hub import try_to_load_from_cache

    hit = try_to_load_from_cache(repo_id=repo, filename="config.json", cache_dir=cache_dir)
    if not (isinstance(hit, str) and os.path.isfile(hit)):
        return None
    folder = Path(hit).parent
    return folder if any((folder / n).is_file() for n in WEIGHT_FILES) else None


def _download(repo: str, cache_dir: str | None) -> Path:
    # safetensors first; the .bin only where a repo has nothing else (loaded with weights_only=True).
    folder = download_repo(repo, cache_dir, [*SUPPORT_FILES, "model.safetensors*"])
    if not any((folder / n).is_file() for n in WEIGHT_FILES):
        folder = download_repo(repo, cache_dir, ["pytorch_model.bin"])
    return folder
