"""Hostile uploads through the APIs: every bad file gets {"ok": false, "message": ...} naming the file and what
to do, a 60-minute sound is cut and answered in bounded memory, and the server goes on answering.

Images go through the Gradio endpoints (/search_image with gradio_client's handle_file, /search with base64)
and POST /api/v1/search; sounds through /search_sound, /search and POST /api/v1/search. One server for the
module; the browser half is tests/test_uploads_browser.py.
"""

from __future__ import annotations

import base64
import io
import json
import resource
import struct
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mmsearch.service import MMSearch
from mmsearch.settings import Settings
from tests.audio_support import tiny_clap_dir, write_sound  # noqa: F401 - the session fixture
from tests.conftest import write_image
from tests.test_ui import client, served

QUERY_S = 10.0  # MMSEARCH_MAX_QUERY_AUDIO_S for these tests: a query sound is cut after this
K = 9  # every photo and every sound of the library
HOUR_RATE = 2_000  # the 60-minute sound: 14 MB of 16-bit PCM, under the upload cap


@dataclass(frozen=True)
class Hostile:
    name: str  # the file's own name: every message must say it
    says: str  # what the message must say about it (lower case)
    write: str  # how to make it (see write_hostile)


IMAGES = [
    Hostile("bomb.png", "10,000,000,000 pixels, over the 178,956,970-pixel limit", "header"),  # a PNG header claiming 100000x100000
    Hostile("huge.png", "400,000,000 pixels, over the 178,956,970-pixel limit", "huge"),  # a real, small file that decodes to 400 megapixels
    Hostile("notes.png", "not a readable image", "text"),
    Hostile("empty.png", "empty file", "empty"),
    Hostile("dot.png", "too small", "dot"),  # 1x1 pixel
    Hostile("beep.png", "not a readable image", "sound"),  # a WAV renamed .png
]
SOUNDS = [
    Hostile("notes.wav", "not a readable audio file", "text"),
    Hostile("empty.wav", "empty file", "empty"),
    Hostile("picture.wav", "no audio stream", "picture"),  # a PNG renamed .wav (PyAV opens it: no audio in it)
]
HINTS = ("use a", "upload")  # every message says what to do


def png_header(width: int, height: int) -> bytes:
    """A valid 1x1 PNG whose header claims width x height (the CRC fixed, so decoders believe it)."""
    buf = io.BytesIO()
    Image.new("L", (1, 1)).save(buf, format="PNG")
    data = bytearray(buf.getvalue())
    ihdr = struct.pack(">II", width, height) + bytes(data[24:29])
    data[16:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr) & 0xFFFFFFFF)
    return bytes(data)


def write_hostile(folder: Path, item: Hostile, prefix: str = "") -> Path:
    path = folder / f"{prefix}{item.name}"
    folder.mkdir(parents=True, exist_ok=True)
    if item.write == "header":
        path.write_bytes(png_header(100_000, 100_000))
    elif item.write == "huge":
        Image.new("1", (20_000, 20_000)).save(path, format="PNG", optimize=True)  # ~50 KB on disk
    elif item.write == "text":
        path.write_text("these are my notes, not a picture or a sound\n" * 20)
    elif item.write == "empty":
        path.write_bytes(b"")
    elif item.write == "dot":
        Image.new("RGB", (1, 1), (200, 30, 30)).save(path, format="PNG")
    elif item.write == "sound":
        write_sound(folder / "tmp-sound.wav", 1.0).rename(path)
    elif item.write == "picture":
        write_image(folder / "tmp-picture.png", 5).rename(path)
    else:
        raise ValueError(item.write)
    return path


def write_hour(path: Path, seconds: float = 3600.0) -> Path:
    """60 minutes at 2 kHz: a tone for QUERY_S seconds, noise for as long again (so where the cut falls
    changes the vector), then silence."""
    import soundfile as sf

    n, q = int(seconds * HOUR_RATE), int(QUERY_S * HOUR_RATE)
    x = np.zeros(n, np.float32)
    x[:min(n, q)] = 0.3 * np.sin(2 * np.pi * 300 * np.arange(min(n, q)) / HOUR_RATE)
    if n > q:
        x[q:min(n, 2 * q)] = 0.5 * np.random.default_rng(3).standard_normal(min(n, 2 * q) - q)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, x, HOUR_RATE, subtype="PCM_16")
    return path


def assert_told(answer: dict, item: Hostile, shown_name: str | None = None) -> None:
    """ok=false and one line that names the upload (not a server folder), says why and what to do."""
    name = shown_name or item.name
    assert answer["ok"] is False, answer
    assert answer.get("results", []) == [], answer
    message = answer["message"]
    assert "\n" not in message and len(message) < 400, message
    assert name in message, message
    assert item.says in message.lower(), message
    assert any(h in message.lower() for h in HINTS), message
    assert "/tmp" not in message and "gradio" not in message.lower() and "mmsearch-query-" not in message, message
    assert "went wrong" not in message and "exception" not in message.lower(), message


def upload_settings(root: Path, tiny_model_dir: Path, tiny_clap_dir: Path) -> Settings:  # noqa: F811
    return Settings(data_dir=root / "library", models_dir=root / "models", model=str(tiny_model_dir), pretrained="",
                    device="cpu", offline=True, batch_size=4, workers=2, commit_every=4,
                    audio_model=str(tiny_clap_dir), audio_batch_size=4, max_query_audio_s=QUERY_S)


def upload_library(root: Path, settings: Settings) -> MMSearch:
    """Photos and sounds, so every upload reaches its decoder (no 'nothing to search' answer first)."""
    media = root / "media"
    for i in range(6):
        write_image(media / f"photo{i}.png", seed=20 + i)
    write_sound(media / "tone.wav", 3.0, freq=440)
    write_sound(media / "noise.flac", 4.0, kind="noise", rate=44_100)
    write_sound(media / "chirp.wav", 3.0, kind="chirp", rate=22_050)
    service = MMSearch(settings)
    service.index([media])
    return service


@pytest.fixture(scope="module")
def uploads(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path, tiny_clap_dir: Path):  # noqa: F811
    root = tmp_path_factory.mktemp("uploads")
    settings = upload_settings(root, tiny_model_dir, tiny_clap_dir)
    service = upload_library(root, settings)
    files = root / "hostile"
    for item in IMAGES + SOUNDS:
        write_hostile(files, item)
    with served(settings, service) as url:
        yield url, files, root


def _post(url: str, body: dict) -> dict:
    req = urllib.request.Request(url + "api/v1/search", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as resp:
        return json.loads(resp.read())


def _body(kind: str, path: Path) -> dict:
    return {"parts": [{"kind": kind, "data": base64.b64encode(path.read_bytes()).decode(), "name": path.name}],
            "k": K}


def ask(url: str, endpoint: str, kind: str, path: Path) -> dict:
    if endpoint == "api/v1":
        return _post(url, _body(kind, path))
    from gradio_client import handle_file

    api = client(url)
    if endpoint == "gradio /search":
        return api.predict(_body(kind, path), api_name="/search")
    return api.predict(handle_file(str(path)), K, api_name="/search_image" if kind == "image" else "/search_sound")


def still_serving(url: str) -> None:
    answer = _post(url, {"parts": [{"kind": "text", "value": "a red bicycle"}], "k": 2})
    assert answer["ok"] and len(answer["results"]) == 2, answer
    text = client(url).predict(query="a red bicycle", k=2, api_name="/search_text")
    assert text["ok"] and len(text["results"]) == 2, text


IMAGE_ENDPOINTS = ["gradio /search_image", "gradio /search", "api/v1"]
SOUND_ENDPOINTS = ["gradio /search_sound", "gradio /search", "api/v1"]


@pytest.mark.parametrize("endpoint", IMAGE_ENDPOINTS)
@pytest.mark.parametrize("item", IMAGES, ids=lambda h: h.name)
def test_hostile_image_gets_a_message(uploads, item: Hostile, endpoint: str) -> None:
    url, files, _ = uploads
    assert_told(ask(url, endpoint, "image", files / item.name), item)
    still_serving(url)


@pytest.mark.parametrize("endpoint", SOUND_ENDPOINTS)
@pytest.mark.parametrize("item", SOUNDS, ids=lambda h: h.name)
def test_hostile_sound_gets_a_message(uploads, item: Hostile, endpoint: str) -> None:
    url, files, _ = uploads
    assert_told(ask(url, endpoint, "audio", files / item.name), item)
    still_serving(url)


def test_a_good_upload_answers_through_every_endpoint(uploads) -> None:
    """The same doors open for a real picture and a real sound (so the refusals above are about the files)."""
    url, files, root = uploads
    photo, sound = root / "media" / "photo2.png", root / "media" / "tone.wav"
    for endpoint in IMAGE_ENDPOINTS:
        answer = ask(url, endpoint, "image", photo)
        assert answer["ok"] and answer["results"][0]["file"] == str(photo), (endpoint, answer)
    for endpoint in SOUND_ENDPOINTS:
        answer = ask(url, endpoint, "audio", sound)
        assert answer["ok"] and str(sound) in [r["file"] for r in answer["results"]], (endpoint, answer)


@pytest.mark.parametrize("endpoint", SOUND_ENDPOINTS)
def test_a_60_minute_sound_is_cut_and_answered(uploads, endpoint: str) -> None:
    """Only the first QUERY_S seconds count: the hour answers exactly as its first QUERY_S seconds do (and
    the noise after them answers differently, so the scores can tell). Decoding the hour whole at the model's
    48 kHz would take 690 MB."""
    import soundfile as sf

    url, _, root = uploads
    long = root / "long"
    if not (long / "hour.wav").exists():
        write_hour(long / "hour.wav")
        write_hour(long / "head.wav", QUERY_S)
        noise, rate = sf.read(long / "hour.wav", frames=int(2 * QUERY_S * HOUR_RATE), dtype="float32")
        sf.write(long / "after.wav", noise[int(QUERY_S * HOUR_RATE):], rate, subtype="PCM_16")
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    answer = ask(url, endpoint, "audio", long / "hour.wav")
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before) / 1024
    assert answer["ok"], answer

    def scores(a: dict) -> dict[str, float]:
        return {r["file"]: r["score"] for r in a["results"] if r["modality"] == "audio"}

    got = scores(answer)
    head, after = scores(ask(url, endpoint, "audio", long / "head.wav")), scores(ask(url, endpoint, "audio", long / "after.wav"))
    assert len(got) == 3 and got.keys() == head.keys() == after.keys()
    assert max(abs(got[f] - head[f]) for f in got) < 1e-5, (got, head)
    assert max(abs(got[f] - after[f]) for f in got) > 1e-3, (got, after)
    assert grown_mb < 300, f"the server's peak memory grew {grown_mb:.0f} MB for one query"
    still_serving(url)


def test_upload_names_cannot_point_anywhere(uploads) -> None:
    """A client's file name is only a name: no path of it reaches the disk or the message."""
    url, files, _ = uploads
    body = _body("audio", files / "notes.wav")
    body["parts"][0]["name"] = "../../../../etc/evil.wav"
    answer = _post(url, body)
    assert_told(answer, SOUNDS[0], shown_name="evil.wav")
    assert "etc" not in answer["message"] and not Path("/etc/evil.wav").exists()
