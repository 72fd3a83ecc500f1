"""ImageBind is optional: registered, and a clear message when its package or weights are missing."""

from __future__ import annotations

import builtins

import pytest

from mmsearch.encoders import create_encoder, encoder_names
from mmsearch.errors import MissingExtra, WeightsNotFound


def test_imagebind_is_registered_and_needs_its_weights(tmp_path):
    assert "imagebind" in encoder_names()
    enc = create_encoder("imagebind", models_dir=str(tmp_path))
    with pytest.raises(WeightsNotFound, match=f"copy imagebind_huge.pth into {tmp_path / 'imagebind'}"):
        enc.space


def test_missing_package_names_the_extra(tmp_path, monkeypatch):
    (tmp_path / "imagebind").mkdir()
    (tmp_path / "imagebind" / "imagebind_huge.pth").write_bytes(b"not used")
    real_import = builtins.__import__

    def no_imagebind(name, *args, **kwargs):
        if name.startswith("imagebind"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_imagebind)
    enc = create_encoder("imagebind", models_dir=str(tmp_path / "x"))
    enc.folder = tmp_path / "imagebind"
    with pytest.raises(MissingExtra, match=r"install mmsearch\[imagebind\]"):
        enc.load()
