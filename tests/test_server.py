"""The server surface: only renditions are served, auth when asked, bounded uploads, and 20 concurrent
clients that each get several answers of their own while a folder is indexed. MMSEARCH_LOAD_SECONDS
(default 8) sets the load run's shortest length."""

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
from tests.test_ui import served

LOAD_SECONDS = float(os.environ.get("MMSEARCH_LOAD_SECONDS", "8"))
CLIENTS = 20
MIN_PER_CLIENT = 3  # every client completes several requests: none is starved
NEW_FILES = 40
JOIN_SECONDS = LOAD_SECONDS + 240  # a client still running after this is hung


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            resp.read()
            return resp.status
    except urllib.error.HTTPError as err:
        return err.code


def patient_client(url: str):
    """A client that waits for slow answers (a busy machine); a hung one is caught by JOIN_SECONDS instead."""
    from gradio_client import Client

    return Client(url, verbose=False, download_files=False, httpx_kwargs={"timeout": 60})


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


def test_twenty_concurrent_clients_get_their_own_answers_while_the_library_grows(library, photo_dir, monkeypatch):
    # Each client asks for one file by name: the keyword side puts exactly that file first, so a mixed-up
    # answer (another client's results) is caught, not only an error. Once every client has had one answer,
    # a folder is indexed through the API; the clients go on until it is done, for at least LOAD_SECONDS,
    # and until each has MIN_PER_CLIENT answers. A client that never finishes is a failure, and so is a
    # server that holds every search until indexing ends.
    more = photo_dir / "more"  # inside an indexed root: the web may index it
    for i in range(NEW_FILES):
        write_image(more / f"new{i}.png", seed=2000 + i)
    library.maintain_index()  # the keyword index, as `mmsearch index` leaves it
    named = {p.stem: str(p) for p in photo_dir.rglob("img*.*")}
    assert len(named) == 7
    names = sorted(named)
    done = [0] * CLIENTS
    errors: list[str] = []
    searches: list[tuple[float, float]] = []  # (start, end) of every correct answer
    indexing: dict = {}
    indexed = threading.Event()
    lock = threading.Lock()
    real_index = library.index

    def timed_index(*args, **kwargs):  # when the server really indexes, not when the request was sent
        indexing["start"] = time.monotonic()
        try:
            return real_index(*args, **kwargs)
        finally:
            indexing["end"] = time.monotonic()

    monkeypatch.setattr(library, "index", timed_index)
    with served(library.settings, library) as url:
        stop = [0.0]

        def begin() -> None:  # runs once, when every client has its first answer
            stop[0] = time.monotonic() + LOAD_SECONDS

        go = threading.Barrier(CLIENTS + 1, action=begin, timeout=JOIN_SECONDS)

        def ask(c, i: int, name: str) -> None:
            t0 = time.monotonic()
            res = c.predict(name, 5, api_name="/search_text")
            top = [r["file"] for r in res["results"]]
            if not res["ok"] or len(top) != 5 or top[0] != named[name]:
                raise AssertionError(f"client {i} asked for {name}, got {res}")
            with lock:
                searches.append((t0, time.monotonic()))
                done[i] += 1

        def hammer(i: int) -> None:
            name, c = names[i % len(names)], None
            try:
                c = patient_client(url)
                ask(c, i, name)
                go.wait()
                while not (indexed.is_set() and time.monotonic() >= stop[0] and done[i] >= MIN_PER_CLIENT):
                    ask(c, i, name)
            except Exception as exc:  # noqa: BLE001 - every failure is counted and reported
                go.abort()  # nobody waits at the barrier for a client that is gone
                with lock:
                    errors.append(f"client {i}: {exc!r}")
            finally:
                if c is not None:
                    c.close()

        def index() -> None:
            c = None
            try:
                c = patient_client(url)
                go.wait()
                indexing["answer"] = c.predict(folder=str(more), api_name="/index_folder")
            except Exception as exc:  # noqa: BLE001
                go.abort()
                with lock:
                    errors.append(f"indexer: {exc!r}")
            finally:
                indexed.set()
                if c is not None:
                    c.close()

        threads = [threading.Thread(target=hammer, args=(i,), daemon=True) for i in range(CLIENTS)]
        indexer = threading.Thread(target=index, daemon=True)
        for t in [*threads, indexer]:
            t.start()
        deadline = time.monotonic() + JOIN_SECONDS
        for t in [*threads, indexer]:
            t.join(max(0.0, deadline - time.monotonic()))
        hung = [i for i, t in enumerate(threads) if t.is_alive()]
        assert not hung and not indexer.is_alive(), f"clients {hung} (or the indexer) never finished: {done}"
        assert not errors, errors[:3]
        assert min(done) >= MIN_PER_CLIENT, f"requests per client: {done}"
        assert indexing["answer"]["ok"] and indexing["answer"]["embedded"] == NEW_FILES, indexing["answer"]
        during = [(a, b) for a, b in searches if indexing["start"] < a and b < indexing["end"]]
        assert during, f"no search was answered while indexing ran ({indexing['end'] - indexing['start']:.1f} s)"
        last = patient_client(url)
        after = last.predict("anything", 100, api_name="/search_text")  # the grown library is searched
        last.close()
        assert {r["file"] for r in after["results"]} == set(named.values()) | {str(p) for p in more.iterdir()}
    latencies = [b - a for a, b in searches]
    p50, p95 = np.percentile(latencies, [50, 95])
    print(f"\n[load] {CLIENTS} clients, {len(latencies)} correct answers (per client {min(done)}-{max(done)}), "
          f"0 errors, p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms; {len(during)} answered within the "
          f"{indexing['end'] - indexing['start']:.1f} s of indexing {NEW_FILES} files")


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
