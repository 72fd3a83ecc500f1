from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mmsearch.errors import BadMedia
from mmsearch.media.files import iter_media_files
from mmsearch.media.images import decode_image
from tests.conftest import write_image

LIMIT = 178_956_970


def _bytes(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF"])
def test_supported_formats_decode_to_rgb(fmt):
    data = _bytes(Image.new("RGB", (40, 30), (200, 10, 10)), fmt)
    out = decode_image(data, f"x.{fmt.lower()}", LIMIT)
    assert out.image.mode == "RGB" and (out.width, out.height) == (40, 30) and out.format == fmt


def test_gif_uses_the_first_frame():
    frames = [Image.new("RGB", (8, 8), c) for c in [(255, 0, 0), (0, 0, 255)]]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:])
    px = decode_image(buf.getvalue(), "a.gif", LIMIT).image.getpixel((0, 0))
    assert px[0] > 200 and px[2] < 50


def test_jpeg_draft_decodes_large_photos_at_reduced_scale_but_keeps_true_size():
    data = _bytes(Image.new("RGB", (2000, 1600), (1, 2, 3)), "JPEG")
    out = decode_image(data, "big.jpg", LIMIT, draft_size=224)
    assert (out.width, out.height) == (2000, 1600)
    assert 224 <= min(out.image.size) < 800


# How a viewer must turn the stored pixels for each EXIF orientation (TIFF/EXIF spec, tag 0x0112), in numpy.
EXIF_TURNS = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],  # mirrored left-right
    3: lambda a: a[::-1, ::-1],  # upside down
    4: lambda a: a[::-1],  # mirrored top-bottom
    5: lambda a: np.rot90(a[:, ::-1], 1),  # mirrored left-right, then turned 90 degrees counter-clockwise
    6: lambda a: np.rot90(a, -1),  # turn 90 degrees clockwise
    7: lambda a: np.rot90(a[:, ::-1], -1),  # mirrored left-right, then turned 90 degrees clockwise
    8: lambda a: np.rot90(a, 1),  # turn 90 degrees counter-clockwise
}


@pytest.mark.parametrize("orientation", sorted(EXIF_TURNS))
def test_exif_orientation_is_applied(orientation):
    # four differently coloured quarters, so every turn and mirror puts a different colour in each corner
    quarters = np.zeros((20, 40, 3), np.uint8)
    quarters[:10, :20], quarters[:10, 20:] = (255, 0, 0), (0, 255, 0)
    quarters[10:, :20], quarters[10:, 20:] = (0, 0, 255), (255, 255, 255)
    exif = Image.Exif()
    exif[0x0112] = orientation
    out = decode_image(_bytes(Image.fromarray(quarters), "JPEG", exif=exif, quality=95), "r.jpg", LIMIT)
    got, want = np.asarray(out.image.convert("RGB")).astype(int), EXIF_TURNS[orientation](quarters).astype(int)
    assert got.shape == want.shape
    h, w = want.shape[0] // 2, want.shape[1] // 2
    for rows, cols in [(slice(0, h), slice(0, w)), (slice(0, h), slice(w, None)),
                       (slice(h, None), slice(0, w)), (slice(h, None), slice(w, None))]:
        corner = got[rows, cols].reshape(-1, 3).mean(axis=0)  # JPEG blurs edges: compare each quarter's mean
        np.testing.assert_allclose(corner, want[rows, cols][0, 0], atol=40)


@pytest.mark.parametrize(
    "data,reason",
    [
        (b"", "empty file"),
        (b"\xff", "not a readable image"),
        (b"hello, I am a text file" * 20, "not a readable image"),
    ],
)
def test_broken_inputs_name_the_reason(data, reason):
    with pytest.raises(BadMedia, match=reason) as err:
        decode_image(data, "/lib/broken.jpg", LIMIT)
    assert err.value.path == "/lib/broken.jpg"


def test_truncated_jpeg_is_refused():
    data = _bytes(Image.effect_noise((256, 256), 60).convert("RGB"), "JPEG")
    with pytest.raises(BadMedia, match="corrupt or truncated"):
        decode_image(data[: len(data) // 2], "t.jpg", LIMIT)


def test_decompression_bomb_is_refused():
    data = _bytes(Image.new("RGB", (1000, 1000)), "PNG")
    with pytest.raises(BadMedia, match="limit|bomb"):
        decode_image(data, "bomb.png", max_pixels=10_000)


def test_walk_finds_supported_files_skips_hidden_and_survives_symlink_loops(tmp_path):
    write_image(tmp_path / "a.jpg", 1)
    write_image(tmp_path / "sub" / "b.PNG", 2)
    write_image(tmp_path / ".hidden" / "c.jpg", 3)
    (tmp_path / "notes.txt").write_text("not media")
    os.symlink(tmp_path, tmp_path / "sub" / "loop")
    found = [Path(e.path).relative_to(tmp_path).as_posix() for e in iter_media_files(tmp_path)]
    assert found == ["a.jpg", "sub/b.PNG"]


def test_walk_reports_unreadable_or_vanished_folders(tmp_path, monkeypatch):
    write_image(tmp_path / "ok" / "a.jpg", 1)
    write_image(tmp_path / "locked" / "b.jpg", 2)
    real_scandir = os.scandir

    def scandir(path):
        if str(path).endswith("locked"):  # as if permissions changed or the folder vanished mid-run
            raise PermissionError(13, "Permission denied")
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    errors = []
    found = [e.path for e in iter_media_files(tmp_path, lambda p, r: errors.append((p, r)))]
    assert found == [str(tmp_path / "ok" / "a.jpg")]
    assert errors == [(str(tmp_path / "locked"), "cannot read folder (Permission denied)")]
