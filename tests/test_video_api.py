"""Video moments over the JSON API: the record names the moment, its frame and a clip opened at it; only
indexed moments are rendered, never a file by path."""

from __future__ import annotations

import base64
import io
import json
import urllib.error
import urllib.parse
import urllib.request

import av
import pytest
from PIL import Image

from mmsearch.service import MMSearch
from tests.audio_support import audio_settings, tiny_clap_dir  # noqa: F401
from tests.test_ui import served
from tests.video_support import photo, two_scenes


def _get(url: str) -> tuple[int, bytes, str]:
    try:
        with urllib.request.urlopen(url, timeout=60) as resp:
            return resp.status, resp.read(), resp.headers.get("content-type", "")
    except urllib.error.HTTPError as err:
        return err.code, b"", ""


def test_the_api_answers_with_the_moment_its_frame_and_a_clip(audio_settings, tmp_path):  # noqa: F811
    root = tmp_path / "lib"
    path = two_scenes(root / "party.mp4")
    outside = two_scenes(tmp_path / "outside.mp4")  # not indexed
    query = io.BytesIO()
    Image.fromarray(photo("coffee", (192, 128))).save(query, format="PNG")
    service = MMSearch(audio_settings)
    service.index([root])
    body = {"parts": [{"kind": "image", "data": base64.b64encode(query.getvalue()).decode(), "name": "q.png"}],
            "targets": ["video"], "k": 3}
    with served(audio_settings, service) as url:
        req = urllib.request.Request(url + "api/v1/search", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        answer = json.loads(urllib.request.urlopen(req, timeout=60).read())
        assert answer["ok"], answer
        top = answer["results"][0]
        assert (top["file"], top["start_s"], top["end_s"], top["moment"]) == (str(path), 4.0, 8.0, f"{path}@4")
        assert top["modality"] == "video" and top["codec"] == "h264" and top["fps"] == 10.0
        status, data, kind = _get(url.rstrip("/") + top["thumb"])
        assert status == 200 and kind == "image/webp" and Image.open(io.BytesIO(data)).size == (96, 64)
        clip_url, fragment = top["clip"].split("#")
        assert fragment == "t=3,7"  # the clip starts 3 s before the moment
        status, data, kind = _get(url.rstrip("/") + clip_url)
        assert status == 200 and kind == "video/webm"
        clip = tmp_path / "clip.webm"
        clip.write_bytes(data)
        with av.open(str(clip)) as c:
            assert c.duration / 1e6 == pytest.approx(7.0, abs=0.3)  # seconds 1-8 of the file
        for bad in (f"{outside}@4", f"{root / 'nothing.mp4'}@1", "../../etc/passwd@1", f"{path}.txt@1"):
            assert _get(f"{url}api/v1/clip?" + urllib.parse.urlencode({"moment": bad}))[0] == 404, bad
        assert _get(f"{url}api/v1/thumb?" + urllib.parse.urlencode({"file": str(outside), "at": 1}))[0] == 404
