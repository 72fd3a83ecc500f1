"""Encoders by kebab-case name. Loaded instances are cached by (name, options)."""

from __future__ import annotations

import importlib
import threading
from typing import Any, Callable, TypeVar

from mmsearch.encoders.base import Encoder
from mmsearch.errors import UnknownModel

_REGISTRY: dict[str, type[Encoder]] = {}
_INSTANCES: dict[tuple, Encoder] = {}
_INSTANCES_LOCK = threading.Lock()

E = TypeVar("E", bound=type[Encoder])
# Imported (and so registered) on the registry's first use, not on `import mmsearch.encoders`: they import torch.
BUILTINS = ("openclip", "clap", "text", "bgevl", "jina", "imagebind")
_builtins_loaded = False
_loading = threading.local()


def _load_builtins() -> None:
    global _builtins_loaded
    if _builtins_loaded or getattr(_loading, "active", False):
        return  # done, or this thread is inside the loop below (a built-in's @register comes back here)
    _loading.active = True
    try:
        for module in BUILTINS:  # other threads block on each module's import lock until it is complete
            importlib.import_module(f"mmsearch.encoders.{module}")
        _builtins_loaded = True
    finally:
        _loading.active = False


def register(name: str) -> Callable[[E], E]:
    _load_builtins()  # a name taken by a built-in is refused whichever module is imported first

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
    _load_builtins()
    return sorted(_REGISTRY)


def encoder_class(name: str) -> type[Encoder]:
    _load_builtins()
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
