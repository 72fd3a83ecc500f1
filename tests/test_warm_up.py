"""A served app loads its models and resident vectors once it listens, before the first search asks."""

from __future__ import annotations

import json
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from mmsearch.service import MMSearch
from mmsearch.settings import Settings
from mmsearch.ui.present import status_markdown
from test_ui import free_port


@contextmanager
def serving(settings: Settings, service: MMSearch) -> Iterator[tuple[str, object]]:
    from mmsearch.ui.app import build_demo, launch

    settings = settings.model_copy(update={"port": free_port()})
    running = launch(settings, demo=build_demo(settings, service), block=False)
    try:
        yield running.url, running
    finally:
        running.close()


def get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=60) as answer:
        return json.loads(answer.read())


def resident_tables(service: MMSearch) -> list[str]:
    """Tables whose compressed copy the searcher holds in memory now."""
    searcher = service._searcher
    if searcher is None:
        return []
    return [t.name for t in service.library().tables("image") if searcher.vectors.loaded(t) is not None]


def test_the_model_and_vectors_are_loaded_before_anyone_searches(settings: Settings, photo_dir: Path) -> None:
    MMSearch(settings).index([photo_dir])
    service = MMSearch(settings)
    service.encoder.unload()  # as in a fresh process (encoders are shared within one)
    assert not service.encoder.loaded and resident_tables(service) == []
    with serving(settings, service) as (url, running):
        running.warming.join(120)
        assert service.encoder.loaded  # no search was asked
        assert resident_tables(service) == [t.name for t in service.library().tables("image")]
        warm = get(url + "api/v1/status")["warm_up"]
        assert warm["state"] == "ready" and warm["error"] is None and warm["seconds"] > 0
        assert "Search models loaded" in status_markdown(service.status())  # the Library tab says so
        loads = []
        service.encoder._load = lambda: loads.append(1)  # the first search must not load anything again
        found = get(url + "api/v1/search?q=a+photo&k=3")
        assert found["ok"] and len(found["results"]) == 3 and loads == []


def test_nothing_indexed_yet_loads_nothing(settings: Settings) -> None:
    service = MMSearch(settings)
    service.encoder.unload()
    with serving(settings, service) as (url, running):
        running.warming.join(120)
        assert service.warmth.state == "skipped"  # no library yet: the status answers "no library" itself
        assert not service.encoder.loaded


def test_a_model_that_cannot_load_is_reported_and_the_server_still_answers(
        settings: Settings, photo_dir: Path, tmp_path: Path) -> None:
    MMSearch(settings).index([photo_dir])  # a library built with a model whose weights are then gone
    broken = tmp_path / "no-weights"
    broken.mkdir()
    (broken / "open_clip_config.json").write_text("{}")
    settings = settings.model_copy(update={"model": str(broken)})
    service = MMSearch(settings)
    with serving(settings, service) as (url, running):
        running.warming.join(120)
        warm = get(url + "api/v1/status")["warm_up"]
        assert warm["state"] == "failed" and "weights" in warm["error"] and str(broken) in warm["error"], warm
        shown = status_markdown(service.status())  # the Library tab tells why before anyone searches
        assert "could not be loaded" in shown and "weights" in shown
        answer = get(url + "api/v1/search?q=cats&k=3")  # the search says the same, and the server is up
        assert not answer["ok"] and "weights" in answer["message"]


def test_warm_up_can_be_turned_off(settings: Settings, photo_dir: Path) -> None:
    MMSearch(settings).index([photo_dir])
    settings = settings.model_copy(update={"warm_up": False})
    service = MMSearch(settings)
    service.encoder.unload()
    with serving(settings, service) as (url, running):
        assert running.warming is None
        assert get(url + "api/v1/status")["warm_up"]["state"] == "not started"
        assert not service.encoder.loaded
