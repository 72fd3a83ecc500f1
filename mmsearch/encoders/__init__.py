"""Encoders turn media and text into vectors of one embedding space each."""

from mmsearch.encoders.base import EmbeddingSpace, Encoder, Modality
from mmsearch.encoders.registry import create_encoder, encoder_names, register

# Importing the module registers the built-in encoders.
from mmsearch.encoders import openclip as _openclip  # noqa: F401,E402
from mmsearch.encoders import clap as _clap  # noqa: F401,E402
from mmsearch.encoders import text as _text  # noqa: F401,E402
from mmsearch.encoders import bgevl as _bgevl  # noqa: F401,E402
from mmsearch.encoders import jina as _jina  # noqa: F401,E402
from mmsearch.encoders import imagebind as _imagebind  # noqa: F401,E402

__all__ = ["EmbeddingSpace", "Encoder", "Modality", "create_encoder", "encoder_names", "register"]
