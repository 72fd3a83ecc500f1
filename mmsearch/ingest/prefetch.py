"""Run a function over a stream in worker threads, in order, with a bounded number in flight."""

from __future__ import annotations

from collections import deque
from concurrent.futures import Executor, Future
from typing import Callable, Iterable, Iterator, TypeVar

T = TypeVar("T")
R = TypeVar("R")


def prefetched(pool: Executor, fn: Callable[[T], R], items: Iterable[T], depth: int) -> Iterator[Future]:
    """Yield fn(item) futures in input order, keeping at most `depth` submitted ahead of the consumer.

    The input is pulled lazily (it may itself be a decoder), so memory stays flat in the input's length.
    Closing the generator early (an interrupt, an error) cancels the queued work instead of finishing it.
    """
    queue: deque[Future] = deque()
    source = iter(items)
    try:
        for item in source:
            queue.append(pool.submit(fn, item))
            if len(queue) >= depth:
                break
        while queue:
            fut = queue.popleft()
            for item in source:
                queue.append(pool.submit(fn, item))
                break
            yield fut
    finally:
        for fut in queue:
            fut.cancel()
