"""A CLI search that a running server answers builds no settings and imports neither pydantic nor numpy when
nothing but the library's place was given; it sends the server the same query as the full path, and anything
that could change the answer (a model, a setting) takes the full path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from mmsearch.server.record import SERVER_FILE, model_fields, models_of
from mmsearch.settings import Settings

PROBE = ("import sys\nfrom mmsearch.cli import main\nsys.argv = ['mmsearch'] + sys.argv[1:]\ntry:\n    main()\n"
         "finally:\n    print('HEAVY:' + ','.join(m for m in ('pydantic', 'numpy', 'torch', 'lancedb') "
         "if m in sys.modules), file=sys.stderr)")


class Recorder(BaseHTTPRequestHandler):
    bodies: list[dict] = []
    answer = {"ok": True, "message": "1 result from 2 ranked lists", "results": [
        {"file": "/photos/cat.jpg", "score": 0.5, "name": "cat.jpg", "folder": "/photos", "width": 4, "height": 4,
         "format": "JPEG", "size": 10, "modality": "image", "thumb": "/api/v1/thumb?file=x"}]}

    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        length = int(self.headers["Content-Length"])
        type(self).bodies.append({"path": self.path, "auth": self.headers.get("Authorization"),
                                  "body": json.loads(self.rfile.read(length))})
        data = json.dumps(self.answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def recorder(tmp_path: Path):
    Recorder.bodies = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    library = tmp_path / "library"
    library.mkdir()
    record = {"url": f"http://127.0.0.1:{server.server_address[1]}/", "pid": os.getpid(),
              "models": models_of(Settings.model_construct()), "model_settings": model_fields(Settings.model_construct()),
              "model_defaults": model_fields(Settings.model_construct())}
    (library / SERVER_FILE).write_text(json.dumps(record))
    yield library
    server.shutdown()


def _run(library: Path, *args: str, **env: str) -> tuple[list[dict], list[str], str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MMSEARCH_")}
    done = subprocess.run([sys.executable, "-c", PROBE, "--data-dir", str(library), "search", *args],
                          env={**clean, **env}, capture_output=True, text=True, timeout=120)
    heavy = done.stderr.strip().splitlines()[-1].removeprefix("HEAVY:")
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    return rows, [m for m in heavy.split(",") if m], done.stderr


def test_a_server_on_the_defaults_is_asked_without_settings(recorder: Path) -> None:
    rows, heavy, err = _run(recorder, "a cat", "--where", "width>=2", "--folder", "/photos")
    assert heavy == [], err  # no pydantic, numpy, torch or lancedb in the process
    assert rows[0]["path"] == "/photos/cat.jpg" and "thumb" not in rows[0]  # printed as the local path is
    fast = Recorder.bodies[-1]
    # the same search through the full path (MMSEARCH_AUDIO=true is the default, but not as the record writes
    # it, so the CLI builds its settings, which then find the same server): the same request
    rows_full, heavy_full, err = _run(recorder, "a cat", "--where", "width>=2", "--folder", "/photos",
                                      MMSEARCH_AUDIO="true")
    assert "pydantic" in heavy_full and rows_full == rows, err
    assert Recorder.bodies[-1] == fast
    assert fast["path"] == "/api/v1/search" and fast["body"]["k"] == 12
    assert fast["body"]["parts"] == [{"kind": "text", "value": "a cat", "weight": 1.0}]
    assert fast["body"]["where"] == ["width>=2"] and fast["body"]["folder"] == "/photos"


def test_auth_travels_on_the_fast_path(recorder: Path) -> None:
    _run(recorder, "a cat", MMSEARCH_AUTH="me:secret")
    assert Recorder.bodies[-1]["auth"] == "Basic bWU6c2VjcmV0"


def test_anything_that_changes_the_answer_takes_the_full_path(recorder: Path) -> None:
    record = json.loads((recorder / SERVER_FILE).read_text())
    # a bad default_k: the settings are built (and name the variable)
    rows, heavy, err = _run(recorder, "a cat", MMSEARCH_DEFAULT_K="0")
    assert "pydantic" in heavy and "MMSEARCH_DEFAULT_K" in err and not rows
    # another default_k, given cleanly: still the fast path, asking for that many
    rows, heavy, err = _run(recorder, "a cat", MMSEARCH_DEFAULT_K="3")
    assert heavy == [] and Recorder.bodies[-1]["body"]["k"] == 3, err
    from mmsearch.cli.fast import fast_server

    given = {"overrides": {"data_dir": recorder}}
    assert fast_server(given) == record["url"]
    # other models than the server's, by flag or variable: never asked (searched in-process instead)
    assert fast_server({"overrides": {"data_dir": recorder, "model": "ViT-L-14"}}) is None
    os.environ["MMSEARCH_PRETRAINED"] = "openai"
    try:
        assert fast_server(given) is None
    finally:
        del os.environ["MMSEARCH_PRETRAINED"]
    os.environ["MMSEARCH_NO_SERVER"] = "1"
    try:
        assert fast_server(given) is None
    finally:
        del os.environ["MMSEARCH_NO_SERVER"]
    # a server started on other models: asked only by a CLI naming the same ones
    other = {**record["model_settings"], "model": "/models/tiny", "pretrained": ""}
    (recorder / SERVER_FILE).write_text(json.dumps({**record, "model_settings": other}))
    assert fast_server(given) is None
    assert fast_server({"overrides": {"data_dir": recorder, "model": "/models/tiny", "pretrained": ""}}) == record["url"]
    # an old record without the model settings: the full path decides
    (recorder / SERVER_FILE).write_text(json.dumps({k: v for k, v in record.items() if not k.startswith("model_")}))
    assert fast_server(given) is None
