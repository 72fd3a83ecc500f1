"""Indexing folders into the library: plan what changed, embed only that, commit in batches."""

from mmsearch.ingest.indexer import Indexer, IndexReport, Progress

__all__ = ["Indexer", "IndexReport", "Progress"]
