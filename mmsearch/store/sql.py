"""Building LanceDB filter strings safely from values we did not write."""

from __future__ import annotations

from typing import Iterable, Iterator


def quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def in_clauses(column: str, values: Iterable[str], chunk: int = 500) -> Iterator[str]:
    """`column IN (...)` filters in chunks, so a long list never becomes one giant query."""
    batch: list[str] = []
    for value in values:
        batch.append(quote(value))
        if len(batch) >= chunk:
            yield f"{column} IN ({', '.join(batch)})"
            batch = []
    if batch:
        yield f"{column} IN ({', '.join(batch)})"
