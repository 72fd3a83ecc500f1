"""Answering queries against one embedding space of the library."""

from mmsearch.search.results import SearchResult
from mmsearch.search.searcher import Searcher

__all__ = ["SearchResult", "Searcher"]
