"""OCR: text inside a real rendered page image becomes keyword-searchable; cached by content."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image, ImageDraw, ImageFont

from mmsearch.cli import cli
from mmsearch.query.parts import QueryOptions, QueryPart
from mmsearch.service import MMSearch
from tests.workflow_support import SAMPLES

pytest.importorskip("rapidocr_onnxruntime")

LINES = ["Invoice number 58213 for the harbour", "Shipped by Northwind Traders", "Total amount due 1234 EUR"]


def write_page(path: Path) -> Path:
    """A scanned-looking page: dark serif text on off-white paper (a font from the system, or Pillow's own)."""
    try:
        font = ImageFont.truetype("/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf", 26)
    except OSError:
        font = ImageFont.load_default(size=26)
    img = Image.new("RGB", (760, 300), (246, 244, 236))
    draw = ImageDraw.Draw(img)
    for i, line in enumerate(LINES):
        draw.text((40, 40 + i * 80), line, fill=(25, 25, 30), font=font)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return path


def test_text_in_images_is_keyword_searchable(settings, tmp_path):
    folder = tmp_path / "scans"
    write_page(folder / "scan-001.png")
    (folder / "photo.jpg").write_bytes((SAMPLES / "rocket-launch.jpg").read_bytes())
    service = MMSearch(settings.model_copy(update={"ocr": True}))
    service.index([folder])
    table = service.searcher.table()
    text = table.rows_for_paths([str(folder / "scan-001.png")])[str(folder / "scan-001.png")]["text"]
    assert "Northwind" in text and "58213" in text and "scan" in text  # OCR words join the file-name words
    hits = service.query([QueryPart("text", "Northwind")], QueryOptions(k=2, targets=("image",))).hits
    assert Path(hits[0].result.path).name == "scan-001.png"
    assert any(c.kind == "keyword" for c in hits[0].contributions)

    runner = CliRunner()
    res = runner.invoke(cli, ["--data-dir", str(settings.data_dir), "--model", settings.model, "--pretrained", "",
                              "--offline", "ocr"], catch_exceptions=False,
                        env={"MMSEARCH_MODELS_DIR": str(settings.models_dir)})
    assert res.exit_code == 0, res.output
    assert "2 images, 0 read" in res.stderr and "2 from cache" in res.stderr and "0 rows updated" in res.stderr

    page = Image.open(write_page(tmp_path / "second.png"))  # another page: `mmsearch index --ocr` reads it
    ImageDraw.Draw(page).text((40, 270), "Page 2", fill=(25, 25, 30))
    page.save(folder / "scan-002.png")
    res = runner.invoke(cli, ["--data-dir", str(settings.data_dir), "--model", settings.model, "--pretrained", "",
                              "--offline", "index", str(folder), "--ocr", "-q"], catch_exceptions=False,
                        env={"MMSEARCH_MODELS_DIR": str(settings.models_dir)})
    assert res.exit_code == 0, res.output
    assert "OCR: 3 images, 1 read" in res.stderr and "2 from cache" in res.stderr
