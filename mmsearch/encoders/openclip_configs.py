"""open_clip's model configs (architecture JSONs) read without importing open_clip.

`import open_clip` imports torch, torchvision and transformers (5-16 s cold on 2 busy cores), yet learning a
model's embedding space needs only its JSON config: an unchanged re-run must not pay for the import. Once
open_clip is imported (a model loaded, a config added with `open_clip.add_model_config`), it answers itself.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from functools import lru_cache
from pathlib import Path

_REQUIRED = ("embed_dim", "vision_cfg", "text_cfg")  # what open_clip itself asks of a config file


@lru_cache(maxsize=1)
def _bundled() -> dict[str, Path]:
    spec = importlib.util.find_spec("open_clip")  # locates the package without running its __init__
    if spec is None or not spec.submodule_search_locations:
        return {}
    folder = Path(next(iter(spec.submodule_search_locations))) / "model_configs"
    return {f.stem: f for f in sorted(folder.glob("*.json"))}


@lru_cache(maxsize=None)
def _read(path: Path) -> dict | None:
    cfg = json.loads(path.read_text(encoding="utf-8"))
    return cfg if all(k in cfg for k in _REQUIRED) else None


def model_config(name: str) -> dict | None:
    """The architecture config of an open_clip model name (a copy), or None for an unknown name."""
    if "open_clip" in sys.modules or ":" in name:  # hf-hub:/local-dir: names and added configs: open_clip's own
        import open_clip

        return open_clip.get_model_config(name)
    path = _bundled().get(name)
    cfg = _read(path) if path is not None else None
    return json.loads(json.dumps(cfg)) if cfg is not None else None


def model_names() -> list[str]:
    """Every model name open_clip knows (used for 'did you mean' hints, so it may import open_clip)."""
    import open_clip

    return open_clip.list_models()
