"""Shared fixtures: a tiny random-weight OpenCLIP model saved like real weights, and real images."""

from __future__ import annotations

import json
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no test may reach the network
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
# Exporting the text tower to ONNX takes seconds per model; tests that cover it turn it on themselves.
os.environ.setdefault("MMSEARCH_TEXT_EXPORT", "0")
# numba (pulled in by audio libraries) compiles into a cache; keep it writable and inside the checkout
os.environ.setdefault("NUMBA_CACHE_DIR", str(Path(__file__).resolve().parent.parent / ".numba_cache"))

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from mmsearch.settings import Settings  # noqa: E402

TINY_CFG = {
    "model_cfg": {
        "embed_dim": 64,
        "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8},
        "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
    },
    "preprocess_cfg": {"mean": [0.48145466, 0.4578275, 0.40821073], "std": [0.26862954, 0.26130258, 0.27577711]},
}


def make_tiny_model_dir(folder: Path, seed: int = 0, cfg: dict | None = None) -> Path:
    """Write open_clip_config.json + random weights in safetensors, the layout of a HF open_clip repo."""
    import open_clip
    import torch
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "open_clip_config.json").write_text(json.dumps(cfg or TINY_CFG))
    torch.manual_seed(seed)
    model = open_clip.create_model(f"local-dir:{folder}", load_weights=False)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(folder / "open_clip_model.safetensors"))
    return folder


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_model_dir(tmp_path_factory.mktemp("models") / "tiny-clip")


@pytest.fixture
def settings(tmp_path: Path, tiny_model_dir: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "library",
        models_dir=tmp_path / "models",
        model=str(tiny_model_dir),
        pretrained="",
        device="cpu",
        offline=True,
        batch_size=4,
        workers=2,
        commit_every=4,
    )


def write_image(path: Path, seed: int, size: tuple[int, int] = (64, 48), fmt: str | None = None) -> Path:
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 255, size=(size[1], size[0], 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, format=fmt)
    return path


@pytest.fixture
def photo_dir(tmp_path: Path) -> Path:
    root = tmp_path / "photos"
    for i, ext in enumerate(["jpg", "png", "webp", "gif", "bmp", "tiff"]):
        write_image(root / f"img{i}.{ext}", seed=i)
    write_image(root / "sub" / "deep" / "img6.jpg", seed=6)
    return root


# Fuzz runs are reproducible: the same examples on every machine (CI included), so a run can't pass or fail
# by the luck of the draw. Set HYPOTHESIS_RANDOM=1 to explore new examples locally.
from hypothesis import settings as _hypothesis_settings  # noqa: E402

_hypothesis_settings.register_profile("repro", derandomize=True, deadline=None)  # a loaded machine is slow
_hypothesis_settings.register_profile("explore", derandomize=False, deadline=None)
_hypothesis_settings.load_profile("explore" if os.environ.get("HYPOTHESIS_RANDOM") else "repro")
