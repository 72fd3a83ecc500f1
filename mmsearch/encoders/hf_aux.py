"""Hub files an open_clip model needs besides its weights: an HF tokenizer (SigLIP, multilingual CLIP) and
the config of an HF text tower (xlm-roberta). open_clip fetches both from the hub while building the model;
resolving them to local folders first lets a model load offline and fail with a useful message otherwise.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Literal

from mmsearch.errors import WeightsNotFound

Need = Literal["tokenizer", "config"]
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "spiece.model",
                   "sentencepiece.bpe.model", "tokenizer.model", "vocab.txt", "vocab.json", "merges.txt")
CONFIG_FILES = ("config.json",)
_MARKER = {"tokenizer": "tokenizer_config.json", "config": "config.json"}


def has(folder: Path, need: Need) -> bool:
    if need == "config":
        return (folder / "config.json").is_file()
    return (folder / "tokenizer_config.json").is_file() or (folder / "tokenizer.json").is_file()


def resolve_hub_folder(name: str, need: Need, models_dir: Path, cache_dir: str | None, offline: bool,
                       near: Iterable[Path] = (), needed_by: str = "") -> str:
    """A local folder holding `need` for hub repo `name`; the repo id itself when online and not cached.

    Looks in `near` (the model's own folder first), a folder given by path, models_dir/<name>/, then the
    Hugging Face cache.
    """
    for folder in [*near, Path(name).expanduser(), models_dir / name]:
        if folder.is_dir() and has(folder, need):
            return str(folder.resolve())
    cached = _cached(name, need, cache_dir)
    if cached is not None:
        return str(cached)
    if offline:
        files = ", ".join(TOKENIZER_FILES[:4] if need == "tokenizer" else CONFIG_FILES)
        first = next(iter(near), None)
        where = f"{models_dir / name}/" + (f" (or the model's folder {first}/)" if first else "")
        raise WeightsNotFound(
            f"the {need} {name} that {needed_by or 'this model'} needs is not on this machine and mmsearch is "
            f"offline. Copy {files} (whichever the repo has) from https://huggingface.co/{name} into {where}, "
            f"or run `mmsearch models pull` once with internet access."
        )
    return name


def _cached(repo: str, need: Need, cache_dir: str | None) -> Path | None:
    if "/" not in repo and not repo.replace("-", "").replace("_", "").isalnum():
        return None
    from huggingface_hub import try_to_load_from_cache

    try:
        hit = try_to_load_from_cache(repo_id=repo, filename=_MARKER[need], cache_dir=cache_dir)
    except ValueError:  # not a valid repo id
        return None
    return Path(hit).parent if isinstance(hit, str) and os.path.isfile(hit) else None


HF_PATTERNS = ("*.json", "*.safetensors", "*.model", "*.txt", "*.tiktoken")


def download_repo(repo: str, cache_dir: str | None, patterns: Iterable[str] = HF_PATTERNS) -> Path:
    """Fetch a repo's config, safetensors weights and tokenizer files into the HF cache (online only)."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

    from mmsearch.errors import MMSearchError, UnknownModel

    try:
        return Path(snapshot_download(repo, allow_patterns=list(patterns), cache_dir=cache_dir))
    except RepositoryNotFoundError:
        raise UnknownModel(f"no model {repo!r} on the Hugging Face hub") from None
    except (HfHubHTTPError, OSError) as exc:
        raise MMSearchError(f"could not download {repo}: {exc}") from None
