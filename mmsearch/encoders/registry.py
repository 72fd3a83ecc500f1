"""Encoders by kebab-case name. Loaded instances are cached by (name, options)."""

from __future__ import annotations

import threading
from typing import Any, Callable, TypeVar

from mmsearch.encoders.base import Encoder
from mmsearch.errors import UnknownModel

_REGISTRY: dict[str, type[Encoder]] = {}
_INSTANCES: dict[tuple, Encoder] = {}
_INSTANCES_LOCK = threading.Lock()

E = TypeVar("E", bound=type[Encoder])


def register(name: str) -> Callable[[E], E]:
    def wrap(cls: E) -> E:
        if name in _REGISTRY:
            raise ValueError(f"encoder name {name!r} is already registered by {_REGISTRY[name].__name__}")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return wrap


def unregister(name: str) -> None:
    _REGISTRY.pop(name, None)
    with _INSTANCES_LOCK:
        for key in [k for k in _INSTANCES if k[0] == name]:
            del _INSTANCES[key]


def encoder_names() -> list[str]:
    return sorted(_REGISTRY)


def encoder_class(name: str) -> type[Encoder]:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownModel(
            f"unknown encoder {name!r}; registered encoders: {', '.join(encoder_names())}"
        ) from None


def create_encoder(name: str, **options: Any) -> Encoder:
    """Return the shared encoder for (name, options), constructing it (not loading it) once."""
    cls = encoder_class(name)
    key = (name, tuple(sorted((k, str(v)) for k, v in options.items())))
    with _INSTANCES_LOCK:
        if key not in _INSTANCES:
            _INSTANCES[key] = cls(**options)
        return _INSTANCES[key]
