"""Where OpenCLIP weights come from: a local folder, a local file, the HF cache, or (online) the hub.

Everything resolves to a local file before loading when it can, so an offline machine fails fast
with a message naming the missing files instead of waiting on download retries.
"""

from __future__ import annotations

import difflib
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from mmsearch.encoders.openclip_configs import model_config, model_names
from mmsearch.errors import UnknownModel, WeightsNotFound

CONFIG_NAME = "open_clip_config.json"
WEIGHT_NAMES = (
    "open_clip_model.safetensors",
    "open_clip_pytorch_model.safetensors",
    "open_clip_pytorch_model.bin",
    "open_clip_pytorch_model.pth",
    "model.safetensors",
)
RANDOM = ("random", "none")


@dataclass(frozen=True)
class WeightsSource:
    open_clip_name: str  # a built-in config name or "local-dir:/abs/folder"
    pretrained: str | None  # file path or tag for open_clip; None for local-dir or random weights
    label: str  # goes into the embedding-space id
    local_file: Path | None = None
    hub_repo: str | None = None

    @property
    def is_local(self) -> bool:
        return self.local_file is not None or self.pretrained is None


def file_digest(path: Path, _cache: dict = {}) -> str:  # noqa: B006 - deliberate memo
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _cache:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 22), b""):
                h.update(chunk)
        _cache[key] = h.hexdigest()
    return _cache[key]


def find_weights_file(folder: Path) -> Path | None:
    for name in WEIGHT_NAMES:
        if (folder / name).is_file():
            return folder / name
    found = sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.bin")) + sorted(folder.glob("*.pt"))
    return found[0] if found else None


def _local_dir_source(folder: Path) -> WeightsSource:
    weights = find_weights_file(folder)
    if weights is None:
        raise WeightsNotFound(
            f"model folder {folder} has {CONFIG_NAME} but no weights file; copy one of "
            f"{', '.join(WEIGHT_NAMES)} into it"
        )
    label = f"{folder.name}-sha256:{file_digest(weights)[:16]}"
    return WeightsSource(f"local-dir:{folder.resolve()}", None, label, local_file=weights)


def _file_source(model: str, file: Path) -> WeightsSource:
    return WeightsSource(model, str(file), f"file-sha256:{file_digest(file)[:16]}", local_file=file)


def _check_known(model: str) -> None:
    if model_config(model) is not None:
        return
    close = difflib.get_close_matches(model, model_names(), n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(close)}?" if close else " `mmsearch models` lists the known ones."
    raise UnknownModel(f"unknown OpenCLIP model {model!r}.{hint}")


def _cached_hub_file(repo: str, filename: str | None, cache_dir: str | None) -> Path | None:
    from huggingface_hub import try_to_load_from_cache

    names = [filename] if filename else []
    names += ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"]
    for name in names:
        hit = try_to_load_from_cache(repo_id=repo, filename=name, cache_dir=cache_dir)
        if isinstance(hit, str) and os.path.isfile(hit):
            return Path(hit)
    return None


def resolve_weights(
    model: str, pretrained: str | None, models_dir: Path, cache_dir: str | None, offline: bool
) -> WeightsSource:
    """Find the weights for (model, pretrained) without touching the network."""
    as_path = Path(model).expanduser()
    for folder in (as_path, models_dir / model, models_dir / model / (pretrained or "")):
        if folder.is_dir() and (folder / CONFIG_NAME).is_file():
            return _local_dir_source(folder)
    if (pretrained or "").lower() in RANDOM:
        _check_known(model)
        return WeightsSource(model, None, "random-init")
    if pretrained and (models_dir / model / pretrained).is_dir():
        weights = find_weights_file(models_dir / model / pretrained)
        if weights is not None:
            _check_known(model)
            return _file_source(model, weights)
    if pretrained and Path(pretrained).expanduser().is_file():
        _check_known(model)
        return _file_source(model, Path(pretrained).expanduser().resolve())
    _check_known(model)
    return _tag_source(model, pretrained, models_dir, cache_dir, offline)


def _tag_source(
    model: str, tag: str | None, models_dir: Path, cache_dir: str | None, offline: bool
) -> WeightsSource:
    if not tag:
        raise UnknownModel(f"no weights named for {model}; pass a pretrained tag, a weights file or 'random'")
    import open_clip  # its table of tags comes with torch (open_clip.pretrained imports safetensors.torch)

    cfg = open_clip.get_pretrained_cfg(model, tag)
    if not cfg:
        tags = open_clip.list_pretrained_tags_by_model(model)
        raise UnknownModel(f"{model} has no pretrained tag {tag!r}; known tags: {', '.join(tags) or 'none'}")
    hub = cfg.get("hf_hub", "")
    # open_clip writes 'org/repo/' for the default file name and 'org/repo/file.bin' otherwise.
    repo, filename = (hub.rstrip("/"), None) if hub.endswith("/") else os.path.split(hub)
    cached = _cached_hub_file(repo, filename, cache_dir) if repo else None
    if cached is not None:
        return WeightsSource(model, str(cached), tag, local_file=cached, hub_repo=repo)
    if offline:
        where = models_dir / model / tag
        source = f"the Hugging Face repo {repo}" if repo else cfg.get("url", "the model's publisher")
        raise WeightsNotFound(
            f"weights for {model} ({tag}) are not on this machine and mmsearch is offline. "
            f"Copy open_clip_model.safetensors from {source} into {where}/, "
            f"or run once with internet access to fill the model cache."
        )
    return WeightsSource(model, tag, tag, hub_repo=repo or None)


def weights_sha256(path: Path) -> str:
    """sha256 of a weights file; free for an LFS file in the HF cache, a link to blobs/<its sha256>."""
    target = Path(os.path.realpath(path))
    if len(target.name) == 64 and all(c in "0123456789abcdef" for c in target.name):
        return target.name
    return file_digest(target)
