"""The Gradio app: built without loading a model, served on loopback, driven through gradio_client."""

from __future__ import annotations

import importlib.util
import json
import socket
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

from conftest import write_image
from mmsearch.settings import PROJECT_ROOT, Settings
from mmsearch.service import MMSearch
from mmsearch.store import Library

EXTS = {".jpg", ".png", ".webp", ".gif", ".bmp", ".tiff"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def served(settings: Settings, service: MMSearch | None = None, **build: object) -> Iterator[str]:
    from mmsearch.ui.app import build_demo, launch

    demo = build_demo(settings, service, **build)
    settings = settings.model_copy(update={"port": free_port()})
    running = launch(settings, demo=demo, block=False)
    try:
        yield running.url
    finally:
        running.close()


def client(url: str):
    from gradio_client import Client

    return Client(url, verbose=False, download_files=False)


def indexed(settings: Settings, folder: Path) -> MMSearch:
    service = MMSearch(settings)
    service.index([folder])
    return service


def files_under(folder: Path) -> set[str]:
    return {str(p) for p in folder.rglob("*") if p.suffix in EXTS}


def test_build_demo_imports_without_loading_weights(settings: Settings) -> None:
    import gradio as gr

    from mmsearch.ui.app import build_demo

    service = MMSearch(settings)
    demo = build_demo(settings, service)
    assert isinstance(demo, gr.Blocks)
    assert not service.encoder.loaded
    names = {d.get("api_name") for d in demo.config["dependencies"] if d.get("api_visibility") == "public"}
    assert {"search_text", "search_image", "index_folder"} <= names


def test_root_app_imports_with_missing_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    broken = tmp_path / "no-weights"
    broken.mkdir()
    (broken / "open_clip_config.json").write_text("{}")
    monkeypatch.setenv("MMSEARCH_DATA_DIR", str(tmp_path / "library"))
    monkeypatch.setenv("MMSEARCH_MODEL", str(broken))
    spec = importlib.util.spec_from_file_location("mmsearch_root_app", PROJECT_ROOT / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.demo is not None
    assert not (tmp_path / "library").exists()  # building the app writes nothing


def test_allowed_paths_are_only_the_renditions(settings: Settings, photo_dir: Path) -> None:
    from mmsearch.ui.app import allowed_paths, launch_options

    indexed(settings, photo_dir)  # an indexed root is never served by path
    assert allowed_paths(settings) == [str(settings.data_dir.resolve() / "thumbs")]
    assert launch_options(settings)["allowed_paths"] == allowed_paths(settings)


def test_search_through_client(settings: Settings, photo_dir: Path) -> None:
    from gradio_client import handle_file

    service = indexed(settings, photo_dir)
    everything = files_under(photo_dir)
    with served(settings, service) as url:
        api = client(url)
        text = api.predict(query="a photo of noise", k=4, api_name="/search_text")
        assert text["ok"], text
        paths = [r["file"] for r in text["results"]]
        assert len(paths) == 4 and set(paths) <= everything
        scores = [r["score"] for r in text["results"]]
        assert scores == sorted(scores, reverse=True)

        query = photo_dir / "img1.png"
        image = api.predict(handle_file(str(query)), 20, api_name="/search_image")
        assert image["ok"], image
        assert {r["file"] for r in image["results"]} == everything  # k above the library size: all of it
        assert image["results"][0]["file"] == str(query)
        scores = [r["score"] for r in image["results"]]
        assert scores == sorted(scores, reverse=True)
        json.dumps(text), json.dumps(image)  # plain JSON all the way


def test_index_folder_through_client(settings: Settings, photo_dir: Path) -> None:
    settings = settings.model_copy(update={"index_roots": str(photo_dir)})  # the operator allows this folder
    with served(settings) as url:
        api = client(url)
        first = api.predict(folder=str(photo_dir), api_name="/index_folder")
        assert first["ok"], first
        assert first["embedded"] == len(files_under(photo_dir)) and first["skipped"] == []
        again = api.predict(folder=str(photo_dir), api_name="/index_folder")
        assert again["ok"] and again["embedded"] == 0 and again["unchanged"] == first["embedded"]
        missing = api.predict(folder=str(photo_dir / "nope"), api_name="/index_folder")
        assert not missing["ok"] and "not a folder" in missing["message"]


def test_errors_are_messages_not_exceptions(settings: Settings, photo_dir: Path, tmp_path: Path) -> None:
    from gradio_client import handle_file

    with served(settings) as url:  # no library at all yet
        api = client(url)
        missing = api.predict(query="cats", k=3, api_name="/search_text")
        assert missing == {"ok": False, "message": missing["message"], "results": []}
        assert "library is empty" in missing["message"]
        by_image = api.predict(handle_file(str(photo_dir / "img0.jpg")), 3, api_name="/search_image")
        assert not by_image["ok"] and "library is empty" in by_image["message"]

    service = indexed(settings, photo_dir)
    with served(settings, service) as url:
        api = client(url)
        empty = api.predict(query="   ", k=3, api_name="/search_text")
        assert not empty["ok"] and "query is empty" in empty["message"]
        no_image = api.predict(None, 3, api_name="/search_image")
        assert not no_image["ok"] and "Upload" in no_image["message"]


def test_missing_weights_is_a_message(settings: Settings, photo_dir: Path, tmp_path: Path) -> None:
    broken = tmp_path / "no-weights"
    broken.mkdir()
    (broken / "open_clip_config.json").write_text("{}")
    indexed(settings, photo_dir)  # a library built with a model whose weights are then gone
    no_weights = settings.model_copy(update={"model": str(broken)})
    with served(no_weights) as url:
        answer = client(url).predict(query="cats", k=3, api_name="/search_text")
    assert not answer["ok"] and "weights" in answer["message"]


def test_results_outside_roots_or_deleted_are_hidden(settings: Settings, photo_dir: Path, tmp_path: Path) -> None:
    from mmsearch.ui.actions import Actions

    service = indexed(settings, photo_dir)
    outside = write_image(tmp_path / "elsewhere" / "x.png", seed=99)
    service.index([outside.parent])
    service.library().remove_root(str(outside.parent))  # rows stay, the folder is no longer shared
    (photo_dir / "img2.webp").unlink()
    actions = Actions(service, tmp_path / "samples", lambda paths: None)
    found = actions.search_text("anything", 20)
    shown = {h.result.path for h in found.hits}
    assert shown == files_under(photo_dir)
    assert "2 hidden" in found.message
    assert all(Path(t).suffix == ".webp" and Path(t).is_file() for t in found.thumbs)
    assert len(found.thumbs) == len(found.hits)


def test_sample_library_button_action(settings: Settings, photo_dir: Path, tmp_path: Path) -> None:
    from mmsearch.ui.actions import Actions

    service = MMSearch(settings)
    missing = Actions(service, tmp_path / "no-samples", lambda paths: None)
    assert missing.library_state().empty
    assert not missing.index_sample().ok
    exposed: list[str] = []
    actions = Actions(service, photo_dir, exposed.extend)
    done = actions.index_sample()
    assert done.ok and done.report.embedded == len(files_under(photo_dir))
    assert str(photo_dir) not in exposed  # indexing never lets the server send the originals
    assert not actions.library_state().empty
