"""Which models were trained for Matryoshka truncation, and to which lengths (no model is loaded to ask).

A Matryoshka-trained model keeps its first d dimensions meaningful on their own, so the resident copy of its
vectors may hold just those (search/codecs.py) while the full vectors on disk rescore the shortlist. Cutting
the vectors of any other model throws away information its training spread over every dimension.
"""

from __future__ import annotations

from mmsearch.encoders.base import EmbeddingSpace

# Encoder name -> the lengths its model card lists. jina-v4: "Matryoshka dimensions: 128, 256, 512, 1024, 2048"
# (huggingface.co/jinaai/jina-embeddings-v4, Intended Usage & Model Info).
TRAINED: dict[str, tuple[int, ...]] = {"jina-v4": (128, 256, 512, 1024, 2048)}


def truncations(space: EmbeddingSpace) -> tuple[int, ...]:
    """The lengths below space.dim that vectors of space may be cut to; () for a model not trained for it.
    A space whose length is not on the model card (a tiny test twin of the architecture) may be cut to any
    shorter length: the card's list only describes the released weights."""
    card = TRAINED.get(space.encoder)
    if not card:
        return ()
    if space.dim in card:
        return tuple(d for d in card if d < space.dim)
    return tuple(range(1, space.dim))
