"""Domain errors. Core code raises these; only the CLI and UI translate them for people."""

from __future__ import annotations


class MMSearchError(Exception):
    """Base class: every message says what went wrong and what to do about it."""


class UnknownModel(MMSearchError):
    pass


class WeightsNotFound(MMSearchError):
    pass


class UnsafeWeights(MMSearchError):
    pass


class LibraryNotFound(MMSearchError):
    pass


class SpaceMismatch(MMSearchError):
    """A table would mix vectors of two embedding spaces."""


class EmptyQuery(MMSearchError):
    pass


class BadQuery(MMSearchError):
    pass


class UnknownColumn(BadQuery):
    """A filter names a column a table does not have. Searching several kinds of table (photos, sounds,
    products) a column that only some have keeps the search to those; it is an error only if none has it."""


class BadMedia(MMSearchError):
    """One input file cannot be used; ingestion skips it and goes on."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class LibraryBusy(MMSearchError):
    pass


class BridgeMismatch(MMSearchError):
    """A bridge fitted for one pair of models was offered another pair."""


class MissingExtra(MMSearchError):
    """An optional dependency is not installed; the message names the extra to install."""


class FusionError(MMSearchError, ValueError):
    """Ranked lists that cannot be fused (bad k, no positive weight, unknown method). A ValueError too,
    for callers that validate arguments that way."""
