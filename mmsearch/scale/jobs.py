"""Library jobs that run on a Ray cluster as one task: index maintenance (keyword and ANN index builds)."""

from __future__ import annotations

from typing import Any

from mmsearch.scale.cluster import connect


def maintain_on_ray(settings: Any, address: str) -> list[str]:
    import ray

    connect(address)
    # The task opens the library itself, so it gets the store options; they travel in the task, never to a log.
    task = ray.remote(num_cpus=1, max_retries=2)(_maintain)
    return ray.get(task.remote(settings.model_dump()))


def _maintain(settings: dict) -> list[str]:
    from mmsearch.service import MMSearch
    from mmsearch.settings import Settings

    return MMSearch(Settings(**settings)).maintain_index()
