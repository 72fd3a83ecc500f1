"""Building encoders from settings: each encoder class takes the options it declares, nothing else."""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

from mmsearch.encoders.base import Encoder
from mmsearch.encoders.registry import create_encoder, encoder_class, encoder_names
from mmsearch.errors import UnknownModel

if TYPE_CHECKING:
    from mmsearch.settings import Settings


def common_options(settings: "Settings") -> dict[str, Any]:
    return {
        "models_dir": str(settings.models_dir),
        "offline": settings.is_offline,
        "device": settings.device,
        "precision": getattr(settings, "precision", "auto"),
        "backend": getattr(settings, "backend", "torch"),
        "tokenizer": getattr(settings, "tokenizer", None),
        "trust_remote_code": getattr(settings, "trust_remote_code", False),
        "truncate_dim": getattr(settings, "truncate_dim", None),
    }


def build_encoder(name: str, settings: "Settings", **options: Any) -> Encoder:
    """The shared encoder `name`, given the settings' options that its constructor accepts."""
    accepted = inspect.signature(encoder_class(name).__init__).parameters
    pool = {**common_options(settings), **options}
    picked = {k: v for k, v in pool.items() if k in accepted and v is not None}
    return create_encoder(name, **picked)


def parse_model_spec(spec: str, default_encoder: str = "open-clip") -> tuple[str, str, str | None]:
    """'[ENCODER:]MODEL[@PRETRAINED]' -> (encoder, model, pretrained)."""
    spec = spec.strip()
    encoder, sep, rest = spec.partition(":")
    if not sep or encoder not in encoder_names():
        encoder, rest = default_encoder, spec
    model, _, pretrained = rest.partition("@")
    if not model:
        raise UnknownModel(f"model spec {spec!r} names no model; write [ENCODER:]MODEL[@PRETRAINED]")
    return encoder, model, pretrained or None


def extra_encoders_from_settings(settings: "Settings") -> list[Encoder]:
    """Further image models (each its own table), and the text model for captions, if configured."""
    out = []
    for spec in filter(None, (s.strip() for s in getattr(settings, "extra_models", "").split(","))):
        encoder, model, pretrained = parse_model_spec(spec)
        out.append(build_encoder(encoder, settings, model=model, pretrained=pretrained))
    text = text_encoder_from_settings(settings)
    return out + ([text] if text is not None else [])


def text_encoder_from_settings(settings: "Settings") -> Encoder | None:
    model = getattr(settings, "text_model", None)
    return build_encoder("text-embed", settings, model=model) if model else None
