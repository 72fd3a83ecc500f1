"""Library jobs that run on a Ray cluster as one task: index maintenance (keyword and ANN index builds)."""

from __future__ import annotations

import os
import socket
from typing import Any

from mmsearch.scale.cluster import connect


def maintain_on_ray(settings: Any, address: str) -> tuple[list[str], str]:
    """What the build did, and where it ran (a worker's host and pid: a log tells it from the driver)."""
    import ray

    connect(address)
    # The task opens the library itself, so it gets the store options; they travel in the task, never to a log.
    task = ray.remote(num_cpus=1, max_retries=2)(_maintain)
    done, host, pid = ray.get(task.remote(settings.model_dump()))
    return done, f"ran as a Ray task on {host} (pid {pid})"


def _maintain(settings: dict) -> tuple[list[str], str, int]:
    from mmsearch.service import MMSearch
    from mmsearch.settings import Settings

    return MMSearch(Settings(**settings)).maintain_index(), socket.gethostname(), os.getpid()
