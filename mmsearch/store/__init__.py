"""The embedded LanceDB library: one table per modality and embedding space."""

from mmsearch.store.library import Library
from mmsearch.store.table import SpaceTable

__all__ = ["Library", "SpaceTable"]
