"""The server exposes only what it should (issue: trust, section 1).

- Indexing a folder never lets the server send its files: every file under an indexed root answers 403/404
  by path, while the thumbnails mmsearch rendered are served.
- The web app indexes only inside the folders the operator allowed, from the API and from the Index tab; the
  Mood tab copies boards only inside the export folder.
- A foreign Host header (DNS rebinding) and a cross-site state-changing request are refused.
- A non-loopback bind needs --auth; a busy port is a one-line message naming the port.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from mmsearch.service import MMSearch
from mmsearch.settings import Settings
from tests.conftest import write_image
from tests.test_browser import page  # noqa: F401 - the Chromium fixture
from tests.test_ui import client, served


def _status(url: str, headers: dict[str, str] | None = None, data: bytes | None = None) -> int:
    req = urllib.request.Request(url, data=data, headers=headers or {}, method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=20) as resp:
            resp.read()
            return resp.status
    except urllib.error.HTTPError as err:
        return err.code


def _raw(url: str, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> int:
    """A request with exactly these headers (urllib would set Host itself)."""
    host, port = url.split("//")[1].rstrip("/").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=20)
    conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
    for k, v in headers.items():
        conn.putheader(k, v)
    conn.putheader("Content-Length", str(len(body)))
    conn.endheaders(body)
    status = conn.getresponse().status
    conn.close()
    return status


@pytest.fixture
def mixed_folder(tmp_path: Path) -> Path:
    """A folder as people have them: photos next to notes and keys."""
    root = tmp_path / "home"
    write_image(root / "photo.jpg", seed=1)
    write_image(root / "sub" / "other.png", seed=2)
    (root / "notes.txt").write_text("my notes")
    (root / ".ssh").mkdir()
    (root / ".ssh" / "id_ed25519").write_text("-----BEGIN OPENSSH PRIVATE KEY-----")
    return root


def test_indexed_folders_are_not_served_but_thumbnails_are(settings: Settings, mixed_folder: Path) -> None:
    from mmsearch.ui.thumbs import Renditions, thumbs_dir

    settings = settings.model_copy(update={"index_roots": str(mixed_folder)})
    with served(settings) as url:
        before = _status(f"{url}gradio_api/file={mixed_folder}/notes.txt")
        done = client(url).predict(folder=str(mixed_folder), api_name="/index_folder")
        assert done["ok"] and done["embedded"] == 2, done
        files = [p for p in mixed_folder.rglob("*") if p.is_file()]
        assert len(files) == 4
        for f in files:
            for route in (f"{url}gradio_api/file={f}", f"{url}gradio_api/file/{str(f).lstrip('/')}"):
                assert _status(route) in (403, 404), route
        # What mmsearch renders is served: the thumbnail of an indexed photo.
        thumb = Renditions(thumbs_dir(settings), settings.max_image_pixels).get(str(mixed_folder / "photo.jpg"))
        assert thumb is not None and _status(f"{url}gradio_api/file={thumb}") == 200
    assert before in (403, 404)


def test_search_results_carry_no_servable_original(settings: Settings, mixed_folder: Path) -> None:
    settings = settings.model_copy(update={"index_roots": str(mixed_folder)})
    service = MMSearch(settings)
    service.index([mixed_folder])
    with served(settings, service) as url:
        found = client(url).predict("a photo", 2, api_name="/search_text")
        assert found["ok"] and len(found["results"]) == 2
        for r in found["results"]:
            assert "path" not in r  # gradio_client would take it for a file to download
            original = r["file"]
            assert _status(f"{url}gradio_api/file={original}") in (403, 404)


def test_indexing_outside_the_allowed_roots_is_refused_from_the_api(settings: Settings, mixed_folder: Path,
                                                                    tmp_path: Path) -> None:
    allowed = mixed_folder / "sub"
    settings = settings.model_copy(update={"index_roots": str(allowed)})
    with served(settings) as url:
        api = client(url)
        for folder in (str(mixed_folder), str(allowed / ".." ), "/", str(tmp_path), "~"):
            answer = api.predict(folder=folder, api_name="/index_folder")
            assert not answer["ok"] and "outside the folders this server may index" in answer["message"], folder
            assert "--index-root" in answer["message"]
        # A symlink inside the allowed root that points out of it is judged by where it leads.
        os.symlink(mixed_folder, allowed / "escape")
        escaped = api.predict(folder=str(allowed / "escape"), api_name="/index_folder")
        assert not escaped["ok"] and "outside" in escaped["message"]
        ok = api.predict(folder=str(allowed), api_name="/index_folder")
        assert ok["ok"] and ok["embedded"] == 1
    assert not (settings.data_dir / "lancedb").exists() or MMSearch(settings).library().roots == [str(allowed)]


def test_default_policy_is_the_library_roots_and_the_sample(settings: Settings, mixed_folder: Path,
                                                           tmp_path: Path) -> None:
    from mmsearch.ui.actions import Actions

    service = MMSearch(settings)
    sample = tmp_path / "samples"
    write_image(sample / "s.jpg", seed=9)
    actions = Actions(service, sample, lambda paths: None)
    refused = actions.index_folder(str(mixed_folder))
    assert not refused.ok and "outside the folders" in refused.message
    assert actions.index_sample().ok
    service.index([mixed_folder / "sub"])  # the operator indexes from a terminal: the web may update it
    assert actions.index_folder(str(mixed_folder / "sub")).ok
    assert not actions.index_folder(str(mixed_folder)).ok  # but not its parent


def test_index_tab_refuses_outside_folders_in_the_browser(page, settings: Settings, mixed_folder: Path) -> None:  # noqa: F811
    settings = settings.model_copy(update={"index_roots": str(mixed_folder / "sub")})
    with served(settings) as url:
        page.goto(url)
        page.get_by_role("tab", name="Index").click()
        page.locator("#mms-folder textarea, #mms-folder input").first.fill(str(mixed_folder))
        page.locator("#mms-index").click()
        summary = page.locator("#mms-summary")
        summary.get_by_text("outside the folders this server may index").wait_for()
    assert not (settings.data_dir / "lancedb").exists()


def test_board_copies_stay_inside_the_export_root(settings: Settings, mixed_folder: Path, tmp_path: Path) -> None:
    from mmsearch.server.policy import NotAllowed, WebPolicy

    policy = WebPolicy.from_settings(settings, [str(mixed_folder)])
    assert policy.export_folder("handoff") == (settings.data_dir / "exports" / "handoff").resolve()
    for bad in ("../escape", str(tmp_path), "/etc", "handoff/../../x"):
        with pytest.raises(NotAllowed, match="outside the export folder"):
            policy.export_folder(bad)


def test_mood_tab_copy_outside_the_export_root_is_refused(settings: Settings, mixed_folder: Path,
                                                         tmp_path: Path) -> None:
    from mmsearch.server.policy import WebPolicy
    from mmsearch.ui.mood_tab import MoodActions
    from mmsearch.ui.thumbs import Renditions
    from mmsearch.workflows.boards import Boards

    service = MMSearch(settings)
    service.index([mixed_folder])
    Boards(service.library()).pin("picks", [str(mixed_folder / "photo.jpg")])
    mood = MoodActions(service, Renditions(tmp_path / "r", 10**8), lambda p: None,
                       lambda: WebPolicy.from_settings(settings, service.library().roots))
    outside = tmp_path / "elsewhere"
    assert "outside the export folder" in mood.copy("picks", str(outside))
    assert not outside.exists()
    assert "Copied 1 files" in mood.copy("picks", "handoff")
    assert (settings.data_dir / "exports" / "handoff" / "001-photo.jpg").is_file()


def test_foreign_host_and_cross_site_writes_are_refused(settings: Settings, mixed_folder: Path) -> None:
    service = MMSearch(settings)
    service.index([mixed_folder])
    with served(settings, service) as url:
        port = url.rstrip("/").rsplit(":", 1)[1]
        assert _raw(url, "GET", "/", {"Host": f"127.0.0.1:{port}"}) == 200
        assert _raw(url, "GET", "/", {"Host": f"localhost:{port}"}) == 200
        for host in (f"evil.example:{port}", "evil.example", f"127.0.0.1.evil.example:{port}"):
            assert _raw(url, "GET", "/", {"Host": host}) == 421, host
            assert _raw(url, "GET", "/gradio_api/info", {"Host": host}) == 421, host
        body = json.dumps({"data": ["x"], "fn_index": 0, "session_hash": "abc"}).encode()
        post = {"Host": f"127.0.0.1:{port}", "Content-Type": "application/json"}
        path = "/gradio_api/queue/join"
        assert _raw(url, "POST", path, {**post, "Origin": "http://evil.example"}, body) == 403
        assert _raw(url, "POST", path, {**post, "Origin": f"http://localhost:{int(port) + 1}"}, body) == 403
        assert _raw(url, "POST", path, {**post, "Origin": "null"}, body) == 403
        assert _raw(url, "POST", path, {**post, "Sec-Fetch-Site": "cross-site"}, body) == 403
        assert _raw(url, "POST", path, {**post, "Origin": f"http://127.0.0.1:{port}"}, body) != 403
        # Programs send no Origin: gradio_client keeps working.
        assert client(url).predict("a photo", 1, api_name="/search_text")["ok"]


def test_allowed_host_option_adds_a_name(settings: Settings) -> None:
    settings = settings.model_copy(update={"allowed_hosts": "photos.lan"})
    with served(settings) as url:
        port = url.rstrip("/").rsplit(":", 1)[1]
        assert _raw(url, "GET", "/", {"Host": f"photos.lan:{port}"}) == 200
        assert _raw(url, "GET", "/", {"Host": f"other.lan:{port}"}) == 421


def test_reviewer_is_the_signed_in_user() -> None:
    from mmsearch.ui.review_tab import reviewer_name

    assert reviewer_name("mallory", "ann") == "ann"  # with auth on, a typed name cannot stand in
    assert reviewer_name("  bob ", None) == "bob"  # without auth the typed name is all we have
    assert reviewer_name("", None) == ""


def _cli(args: list[str], settings: Settings, timeout: float = 60) -> subprocess.CompletedProcess:
    env = {**os.environ, "MMSEARCH_DATA_DIR": str(settings.data_dir), "MMSEARCH_MODEL": settings.model,
           "MMSEARCH_PRETRAINED": "", "MMSEARCH_OFFLINE": "1"}
    env.pop("MMSEARCH_AUTH", None)
    return subprocess.run([sys.executable, "-m", "mmsearch", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_non_loopback_bind_needs_auth(settings: Settings) -> None:
    done = _cli(["serve", "--host", "0.0.0.0", "--port", "0"], settings)
    assert done.returncode != 0
    assert "--auth" in done.stderr and "--insecure-no-auth" in done.stderr and "Traceback" not in done.stderr


def test_busy_port_is_a_message(settings: Settings) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        done = _cli(["serve", "--port", str(port)], settings)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert f"port {port}" in done.stderr and "--port" in done.stderr
