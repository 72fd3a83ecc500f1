"""The server surface: only indexed roots are served, auth when asked, bounded uploads, and 20
concurrent clients without an error. MMSEARCH_LOAD_SECONDS (default 8) sets the load run's length."""

from __future__ import annotations

import os
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from mmsearch.service import MMSearch
from tests.conftest import write_image
from tests.test_ui import client, served

LOAD_SECONDS = float(os.environ.get("MMSEARCH_LOAD_SECONDS", "8"))
CLIENTS = 20


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            resp.read()
            return resp.status
    except urllib.error.HTTPError as err:
        return err.code


@pytest.fixture
def library(settings, photo_dir, tmp_path) -> MMSearch:
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    os.symlink(secret, photo_dir / "escape.jpg")  # a link inside the root that points outside it
    os.symlink(tmp_path, photo_dir / "up")
    svc = MMSearch(settings)
    svc.index([photo_dir])
    return svc


def test_only_renditions_are_served(settings, library, photo_dir, tmp_path):
    from mmsearch.ui.thumbs import Renditions, thumbs_dir

    inside = photo_dir / "img0.jpg"
    secret = tmp_path / "secret.txt"
    thumb = Renditions(thumbs_dir(settings), settings.max_image_pixels).get(str(inside))
    with served(settings, library) as url:
        base = url.rstrip("/") + "/gradio_api"
        assert _get(f"{base}/file={thumb}") == 200  # sanity: the route serves what mmsearch rendered
        attacks = [
            str(inside),  # an indexed original is never served by path

            "/etc/passwd",
            str(secret),
            f"{photo_dir}/../secret.txt",
            f"{photo_dir}/../../../../../../etc/passwd",
            str(photo_dir / "escape.jpg"),
            str(photo_dir / "up" / "secret.txt"),
            urllib.parse.quote(f"{photo_dir}/../secret.txt", safe=""),
            f"{photo_dir}/%2e%2e/secret.txt",
            f"{photo_dir}/..%2fsecret.txt",
            str(Path(__file__).resolve()),
        ]
        for attack in attacks:
            for route in (f"{base}/file={attack}", f"{base}/file/{attack.lstrip('/')}", f"{base}/file/{attack}"):
                status = _get(route)
                assert status in (403, 404, 400), f"{route} answered {status}"


def test_auth_protects_ui_and_api(settings, library):
    settings = settings.model_copy(update={"auth": "ann:s3cret!"})
    with served(settings, library) as url:
        assert _get(url.rstrip("/") + "/gradio_api/info") in (401, 403)
        from gradio_client import Client

        with pytest.raises(Exception):
            Client(url, verbose=False)
        ok = Client(url, auth=("ann", "s3cret!"), verbose=False).predict("a cat", 3, api_name="/search_text")
        assert ok["ok"] and len(ok["results"]) == 3


def test_bad_auth_setting_is_refused():
    from mmsearch.settings import Settings

    with pytest.raises(ValueError, match="user:password"):
        Settings(auth="nopassword").auth_pair()


def test_uploads_over_the_limit_are_refused(settings, library):
    settings = settings.model_copy(update={"max_upload_mb": 1})
    with served(settings, library) as url:
        body = b"--x\r\nContent-Disposition: form-data; name=\"files\"; filename=\"big.jpg\"\r\n\r\n"
        body += b"\0" * (2 * 1024 * 1024) + b"\r\n--x--\r\n"
        req = urllib.request.Request(url.rstrip("/") + "/gradio_api/upload", data=body, method="POST",
                                     headers={"Content-Type": "multipart/form-data; boundary=x"})
        try:
            urllib.request.urlopen(req, timeout=20)
            status = 200
        except urllib.error.HTTPError as err:
            status = err.code
        assert status == 413


def test_twenty_concurrent_clients_without_errors(settings, library, photo_dir):
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    with served(settings, library) as url:
        stop = time.monotonic() + LOAD_SECONDS

        def hammer(i: int) -> None:
            c = client(url)
            while time.monotonic() < stop:
                t0 = time.perf_counter()
                try:
                    res = c.predict(f"query {i}", 5, api_name="/search_text")
                    if not res["ok"] or len(res["results"]) != 5:
                        raise AssertionError(res)
                except Exception as exc:  # noqa: BLE001 - every failure is counted and reported
                    with lock:
                        errors.append(repr(exc))
                    return
                with lock:
                    latencies.append(time.perf_counter() - t0)

        threads = [threading.Thread(target=hammer, args=(i,)) for i in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(LOAD_SECONDS + 120)
    assert not errors, errors[:3]
    assert len(latencies) >= CLIENTS
    p50, p95 = np.percentile(latencies, [50, 95])
    print(f"\n[load] {CLIENTS} clients, {len(latencies)} requests in {LOAD_SECONDS:.0f}s, "
          f"0 errors, p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms")


def test_searches_while_indexing_stay_consistent(settings, photo_dir):
    svc = MMSearch(settings)
    svc.index([photo_dir])
    more = photo_dir / "more"
    for i in range(60):
        write_image(more / f"m{i}.png", seed=1000 + i)
    failures: list[str] = []
    done = threading.Event()

    def search_loop() -> None:
        searcher = MMSearch(settings)  # a second reader, as the app would be
        while not done.is_set():
            try:
                hits = searcher.search_text("x", k=200)
                paths = [h.path for h in hits]
                assert len(paths) == len(set(paths)) and len(paths) >= 7
                assert all(Path(p).exists() for p in paths)
            except Exception as exc:  # noqa: BLE001
                failures.append(repr(exc))
                return

    t = threading.Thread(target=search_loop)
    t.start()
    try:
        svc.index([photo_dir])
    finally:
        done.set()
        t.join(30)
    assert not failures, failures[:3]
    assert len(svc.search_text("x", k=200)) == 67
