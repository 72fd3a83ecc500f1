"""Encoders turn media and text into vectors of one embedding space each.

The built-in encoders (which import torch) register themselves when the registry is first asked about
names (see registry.BUILTINS), not when this package is imported: the torch-free text path
(`mmsearch.encoders.onnx_text`) lives here too.
"""

from mmsearch.encoders.base import EmbeddingSpace, Encoder, Modality
from mmsearch.encoders.registry import create_encoder, encoder_names, register

__all__ = ["EmbeddingSpace", "Encoder", "Modality", "create_encoder", "encoder_names", "register"]
