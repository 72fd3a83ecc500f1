"""One query path: the same query on the same library gives the same ranked list from the CLI (in-process
and through a running server), the JSON API, gradio_client and the web page; concurrent clients get their
own answers; the CLI falls back cleanly when the recorded server is gone."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest

from mmsearch.service import MMSearch
from mmsearch.settings import Settings
from tests.conftest import write_image
from tests.test_browser import page  # noqa: F401 - the Chromium fixture
from tests.test_ui import client, served

K = 5


@pytest.fixture
def library(settings: Settings, tmp_path: Path) -> tuple[MMSearch, Path]:
    root = tmp_path / "photos"
    for i in range(14):
        write_image(root / f"photo{i:02d}.png", seed=40 + i)
    write_image(root / "astronaut.png", seed=7)  # the keyword side finds it by name
    svc = MMSearch(settings)
    svc.index([root])
    svc.maintain_index()  # the keyword index, as `mmsearch index` builds it
    return svc, root


def _cli(settings: Settings, *args: str, server: bool = False) -> tuple[list[dict], bool]:
    """Run `mmsearch search` as a new process; returns its JSON lines and whether it imported torch."""
    env = {**os.environ, "MMSEARCH_DATA_DIR": str(settings.data_dir), "MMSEARCH_MODEL": settings.model,
           "MMSEARCH_PRETRAINED": "", "MMSEARCH_OFFLINE": "1", "MMSEARCH_DEVICE": "cpu"}
    if not server:
        env["MMSEARCH_NO_SERVER"] = "1"
    code = ("import sys\nfrom mmsearch.cli import main\nsys.argv = ['mmsearch'] + sys.argv[1:]\ntry:\n    main()\n"
            "finally:\n    print('TORCH' if 'torch' in sys.modules else 'NO-TORCH', file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", code, "search", *args, "-k", str(K)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()], "NO-TORCH" not in done.stderr


def _api(url: str, body: dict) -> dict:
    req = urllib.request.Request(url + "api/v1/search", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as resp:
        return json.loads(resp.read())


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def _files(records: list[dict]) -> list[str]:
    return [r.get("file") or r["path"] for r in records]


def test_same_ranked_list_from_every_surface(page, settings: Settings, library, tmp_path: Path) -> None:  # noqa: F811
    from gradio_client import handle_file

    svc, root = library
    probe = write_image(tmp_path / "probe.png", seed=44)  # looks like photo04
    cli_text, _ = _cli(settings, "astronaut")
    cli_image, _ = _cli(settings, "--image", str(probe))
    cli_two, _ = _cli(settings, "--text", "astronaut", "--image", str(probe))
    assert _files(cli_text)[0] == str(root / "astronaut.png")  # the keyword side counts on every surface
    assert _files(cli_image)[0] == str(root / "photo04.png")
    with served(settings, svc) as url:
        api_text = urllib.request.urlopen(f"{url}api/v1/search?q=astronaut&k={K}", timeout=60).read()
        api_image = _api(url, {"parts": [{"kind": "image", "data": _b64(probe), "name": "probe.png"}], "k": K})
        api_two = _api(url, {"parts": [{"kind": "text", "value": "astronaut"},
                                       {"kind": "image", "data": _b64(probe), "name": "probe.png"}], "k": K})
        gc = client(url)
        gc_text = gc.predict("astronaut", K, api_name="/search_text")
        gc_image = gc.predict(handle_file(str(probe)), K, api_name="/search_image")
        gc_two = gc.predict({"parts": [{"kind": "text", "value": "astronaut"},
                                       {"kind": "image", "data": _b64(probe), "name": "probe.png"}], "k": K},
                            api_name="/search")
        cli_server, used_torch = _cli(settings, "astronaut", server=True)

        page.goto(url)
        page.set_default_timeout(60_000)  # a loaded 2-core machine renders slowly
        k_box = page.locator("#mms-k input[type=number]")
        k_box.fill(str(K))
        k_box.press("Enter")
        page.locator("#mms-query textarea, #mms-query input").first.fill("astronaut")
        page.locator("#mms-search").click()
        page.locator("#mms-message").get_by_text(f"{K} results").wait_for()
        shown = page.locator("#mms-gallery .caption-label").all_inner_texts()

    text = _files(cli_text)
    assert _files(json.loads(api_text)["results"]) == text
    assert _files(gc_text["results"]) == text
    assert _files(cli_server) == text and not used_torch  # asked the server: no model in the CLI process
    assert [c.split(" · ", 1)[1] for c in shown] == [Path(f).name for f in text]
    assert _files(api_image["results"]) == _files(gc_image["results"]) == _files(cli_image)
    assert _files(api_two["results"]) == _files(gc_two["results"]) == _files(cli_two)
    # Scores and metadata survive gradio_client (no key it takes for a file to download)
    for r in gc_text["results"] + gc_two["results"]:
        assert isinstance(r["score"], float) and r["score_space"] and r["matched"] and "path" not in r
    assert [r["score"] for r in gc_text["results"]] == [r["score"] for r in cli_text]


def test_concurrent_clients_get_their_own_answers(settings: Settings, library) -> None:
    svc, root = library
    photos = sorted(root.glob("photo*.png"))[:12]
    failures: list[str] = []
    with served(settings, svc) as url:
        def one(photo: Path) -> None:
            for _ in range(3):
                answer = _api(url, {"parts": [{"kind": "image", "data": _b64(photo), "name": photo.name}], "k": 3,
                                    "hybrid": False})
                top = answer["results"][0]
                if top["file"] != str(photo) or abs(top["score"] - 1.0) > 1e-4:
                    failures.append(f"{photo.name} answered {top['file']} ({top['score']})")
        threads = [threading.Thread(target=one, args=(p,)) for p in photos]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not any(t.is_alive() for t in threads), "a client hung"
    assert not failures, failures[:3]


def test_cli_falls_back_when_the_recorded_server_is_gone(settings: Settings, library) -> None:
    from mmsearch.server.http import SERVER_FILE, fingerprint

    svc, root = library
    record = Path(settings.data_dir) / SERVER_FILE
    local, _ = _cli(settings, "astronaut")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    record.write_text(json.dumps({"url": "http://127.0.0.1:9/", "pid": int(dead.stdout), "models": fingerprint(settings)}))
    stale, used_torch = _cli(settings, "astronaut", server=True)
    assert _files(stale) == _files(local) and used_torch  # stale record: searched in-process
    record.write_text(json.dumps({"url": "http://127.0.0.1:9/", "pid": os.getpid(), "models": fingerprint(settings)}))
    unreachable, used_torch = _cli(settings, "astronaut", server=True)
    assert _files(unreachable) == _files(local) and used_torch  # live process, closed port: in-process


def test_server_record_is_removed_on_close_and_names_the_models(settings: Settings, library) -> None:
    from mmsearch.server.http import SERVER_FILE, fingerprint, recorded_server

    svc, _ = library
    with served(settings, svc) as url:
        assert recorded_server(settings.data_dir, fingerprint(settings)) == url
        other = settings.model_copy(update={"model": "ViT-L-14"})
        assert recorded_server(settings.data_dir, fingerprint(other)) is None  # other models: not this server
    assert not (Path(settings.data_dir) / SERVER_FILE).exists()


def test_thumbnails_by_url_only_for_indexed_photos(settings: Settings, library, tmp_path: Path) -> None:
    svc, root = library
    loose = write_image(root / "not-indexed.png", seed=99)
    with served(settings, svc) as url:
        answer = json.loads(urllib.request.urlopen(f"{url}api/v1/search?q=astronaut&k=2", timeout=60).read())
        thumb = answer["results"][0]["thumb"]
        with urllib.request.urlopen(url.rstrip("/") + thumb, timeout=60) as resp:
            assert resp.headers["content-type"] == "image/webp" and resp.read()[:4] == b"RIFF"
        for bad in (str(loose), "/etc/passwd", "relative.png"):
            with pytest.raises(urllib.error.HTTPError) as err:
                urllib.request.urlopen(f"{url}api/v1/thumb?file={bad}", timeout=60)
            assert err.value.code == 404
        schema = json.loads(urllib.request.urlopen(f"{url}openapi.json", timeout=60).read())
        assert {"/api/v1/search", "/api/v1/thumb", "/api/v1/status"} <= set(schema["paths"])


def test_api_auth_and_upload_cap(settings: Settings, library) -> None:
    svc, _ = library
    settings = settings.model_copy(update={"auth": "ann:s3cret!", "max_upload_mb": 1})
    with served(settings, svc) as url:
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"{url}api/v1/search?q=x", timeout=60)
        assert err.value.code == 401
        auth = {"Authorization": "Basic " + base64.b64encode(b"ann:s3cret!").decode()}
        req = urllib.request.Request(f"{url}api/v1/search?q=x&k=2", headers=auth)
        assert json.loads(urllib.request.urlopen(req, timeout=60).read())["ok"]
        big = json.dumps({"parts": [{"kind": "image", "data": "A" * (2 * 1024 * 1024)}]}).encode()
        req = urllib.request.Request(f"{url}api/v1/search", data=big,
                                     headers={**auth, "Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(req, timeout=60)
        assert err.value.code == 413


def test_cold_cli_text_query_runs_without_torch_and_agrees(settings: Settings, tmp_path: Path) -> None:
    """Indexing exports the text tower; a text query then needs no torch and gives the torch answer."""
    import shutil

    from mmsearch.query.light import export_folder

    settings = settings.model_copy(update={"text_export": True, "models_dir": tmp_path / "models"})
    root = tmp_path / "pics"
    for i in range(8):
        write_image(root / f"p{i}.png", seed=70 + i)
    svc = MMSearch(settings)
    svc.index([root])
    assert svc.text_export_problem is None and any(export_folder(settings.models_dir).glob("*-text.json"))
    env_models = {"MMSEARCH_MODELS_DIR": str(settings.models_dir)}
    os.environ.update(env_models)
    try:
        light, used_torch = _cli(settings, "a red square", "--no-hybrid")
        assert not used_torch
        shutil.rmtree(export_folder(settings.models_dir))  # no export: the full path, with torch
        full, used_torch = _cli(settings, "a red square", "--no-hybrid")
        assert used_torch
    finally:
        os.environ.pop("MMSEARCH_MODELS_DIR", None)
    assert _files(light) == _files(full) and len(light) == K
    assert [r["score"] for r in light] == pytest.approx([r["score"] for r in full], abs=1e-4)
