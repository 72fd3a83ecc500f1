"""Product catalogs answer in the general search: the same engine, every surface (CLI, JSON API, the Search
tab's actions), rows labelled as products with their own typed filters, pictures from the catalog's image."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from mmsearch.cli import cli
from mmsearch.query.parts import QueryPart, is_product_key, like_targets
from mmsearch.server.api import SearchIn, _rendition, run_query
from mmsearch.service import MMSearch
from mmsearch.ui.actions import Actions
from mmsearch.ui.present import caption
from mmsearch.ui.thumbs import Renditions, thumbs_dir
from tests.conftest import write_image
from tests.workflow_support import make_shop


@pytest.fixture
def shop_library(settings, tmp_path):
    """A library with photos of its own and a product catalog whose images are elsewhere."""
    photos = tmp_path / "photos"
    for i in range(6):
        write_image(photos / f"photo{i}.png", seed=70 + i)
    catalog = make_shop(tmp_path / "shop")
    svc = MMSearch(settings)
    svc.index([photos])
    from mmsearch.workflows.catalog import CatalogIndexer

    CatalogIndexer.for_service(svc).index(catalog, id_column="SKU")
    svc.maintain_index()
    return svc, photos, catalog


def _cli(settings, *args: str):
    base = ["--data-dir", str(settings.data_dir), "--model", settings.model, "--pretrained", "", "--device", "cpu",
            "--offline"]
    return CliRunner().invoke(cli, base + list(args), catch_exceptions=False,
                              env={"MMSEARCH_MODELS_DIR": str(settings.models_dir), "MMSEARCH_NO_SERVER": "1"})


def test_general_search_finds_products_labelled_with_their_fields(shop_library):
    svc, photos, catalog = shop_library
    answer = svc.query([QueryPart("text", "RKT-03")], svc.options(8))
    kinds = {h.result.modality for h in answer.hits}
    assert kinds == {"image", "product"}  # photos and products in one list
    top = answer.hits[0].result  # the SKU is in the keyword index: found whatever the random model says
    assert top.modality == "product" and top.path == f"{catalog}#RKT-03"
    assert top.product["product_id"] == "RKT-03" and top.product["catalog"] == "products"
    assert top.product["title"] == "Rocket launch print" and top.product["price"] == 1299.0
    assert top.product["fields"]["category"] == "posters"
    assert top.picture.endswith("img/rocket-launch.jpg")
    assert "product" in caption(top) and "1,299.00" in caption(top)
    # every photo row is still a file, with no product attached
    assert all(h.result.product is None for h in answer.hits if h.result.modality == "image")


def test_typed_filters_keep_to_the_tables_that_have_the_column(shop_library, settings):
    svc, photos, catalog = shop_library
    hits = svc.query([QueryPart("text", "print")], svc.options(8, where=["category=posters", "price<100"])).hits
    assert [h.result.product["product_id"] for h in hits] == ["CAT-01"]  # photos have no price: none can match
    res = _cli(settings, "search", "print", "--where", "price<100", "--target", "images")
    assert res.exit_code != 0 and "unknown filter column 'price'" in res.output
    res = _cli(settings, "search", "print", "--where", "colour=red")
    assert res.exit_code != 0 and "unknown filter column 'colour'" in res.output
    # a filter every table has applies to all of them
    both = svc.query([QueryPart("text", "print")], svc.options(20, where=["width>=1"])).hits
    assert {h.result.modality for h in both} == {"image", "product"}


def test_cli_targets_products_and_prints_them_plainly(shop_library, settings):
    svc, photos, catalog = shop_library
    res = _cli(settings, "search", "RKT-03", "--target", "products", "-k", "3")
    rows = [json.loads(line) for line in res.stdout.splitlines()]
    assert res.exit_code == 0 and rows and {r["modality"] for r in rows} == {"product"}
    assert rows[0]["product"]["product_id"] == "RKT-03"
    plain = _cli(settings, "search", "RKT-03", "-k", "3", "--plain").stdout.splitlines()
    assert "prod" in plain[1] and "Rocket launch print 1299.0 [products:RKT-03]" in plain[1]
    # more like a product: products, from its stored vector, never itself
    like = _cli(settings, "search", "--like", f"{catalog}#RKT-03", "-k", "3")
    liked = [json.loads(line) for line in like.stdout.splitlines()]
    assert like.exit_code == 0, like.output
    assert len(liked) == 3 and all(r["modality"] == "product" for r in liked)
    assert f"{catalog}#RKT-03" not in [r["path"] for r in liked]


def test_product_keys_are_told_from_files(shop_library, tmp_path):
    svc, photos, catalog = shop_library
    assert is_product_key(f"{catalog}#RKT-03") and like_targets(f"{catalog}#RKT-03") == ("product",)
    odd = write_image(tmp_path / "odd#1.png", seed=3)  # a photo with # in its name is a photo
    assert not is_product_key(str(odd)) and like_targets(str(odd)) == ("image",)
    assert not is_product_key(str(photos / "photo1.png"))


def test_json_api_and_search_tab_show_products_with_their_pictures(shop_library, settings):
    svc, photos, catalog = shop_library
    answer = run_query(svc, SearchIn.model_validate({"parts": [{"kind": "text", "value": "RKT-03"}], "k": 8}))
    assert answer["ok"]
    top = answer["results"][0]
    assert top["modality"] == "product" and top["product"]["product_id"] == "RKT-03"
    assert "path" not in top and top["thumb"].startswith("/api/v1/thumb?")
    renditions = Renditions(thumbs_dir(settings), settings.max_image_pixels)
    thumb = _rendition(svc, renditions, top["file"], 128)  # the product's image, rendered; never the CSV
    assert thumb is not None and thumb.endswith(".webp")
    assert _rendition(svc, renditions, f"{catalog}#NOPE-99", 128) is None  # not a product: nothing
    assert _rendition(svc, renditions, str(catalog), 128) is None  # the catalog file itself is not served

    actions = Actions(svc, Path("/nonexistent"), lambda folders: None)
    found = actions.search_text("RKT-03", 8)
    assert found.ok and found.hits[0].result.modality == "product"
    assert len(found.thumbs) == len(found.hits) and all(t.endswith(".webp") for t in found.thumbs)
    # same ranked list as the API
    assert [h.result.path for h in found.hits] == [r["file"] for r in answer["results"]]


def test_a_catalog_whose_image_is_gone_hides_that_product(shop_library):
    svc, photos, catalog = shop_library
    shutil.move(str(catalog.parent / "img" / "rocket-launch.jpg"), str(catalog.parent / "rocket.bak"))
    actions = Actions(svc, Path("/nonexistent"), lambda folders: None)
    found = actions.search_text("RKT-03", 8)
    assert found.ok and "RKT-03" not in [h.result.product and h.result.product["product_id"] for h in found.hits]
    assert "hidden" in found.message


def test_cold_cli_answers_with_products_without_torch(settings, tmp_path):
    """The torch-free text path (exported text tower) searches the catalogs too, and agrees with torch."""
    import os

    from mmsearch.query.light import export_folder
    from mmsearch.workflows.catalog import CatalogIndexer
    from tests.test_front_door import _cli as cold_cli

    settings = settings.model_copy(update={"text_export": True, "models_dir": tmp_path / "models"})
    photos = tmp_path / "pics"
    for i in range(4):
        write_image(photos / f"p{i}.png", seed=90 + i)
    svc = MMSearch(settings)
    svc.index([photos])
    CatalogIndexer.for_service(svc).index(make_shop(tmp_path / "shop"), id_column="SKU")
    os.environ["MMSEARCH_MODELS_DIR"] = str(settings.models_dir)
    try:
        light, used_torch = cold_cli(settings, "a rocket", "--no-hybrid")
        assert not used_torch
        shutil.rmtree(export_folder(settings.models_dir))
        full, used_torch = cold_cli(settings, "a rocket", "--no-hybrid")
        assert used_torch
    finally:
        os.environ.pop("MMSEARCH_MODELS_DIR", None)
    assert [r["path"] for r in light] == [r["path"] for r in full]
    assert "product" in {r["modality"] for r in light}


def test_program_answers_render_no_thumbnails(shop_library, settings):
    """The gradio JSON endpoints answer with thumbnail URLs: rendering pictures for them only cost time."""
    svc, photos, catalog = shop_library
    actions = Actions(svc, Path("/nonexistent"), lambda folders: None)
    for_program = actions.search_text("RKT-03", 8, render=False)
    assert not actions.renditions.folder.exists() or not any(actions.renditions.folder.rglob("*.webp"))
    for_page = actions.search_text("RKT-03", 8)
    assert [h.result.path for h in for_program.hits] == [h.result.path for h in for_page.hits]
    assert for_program.thumbs == [] and len(for_page.thumbs) == len(for_page.hits)
    assert all(r["thumb"].startswith("/api/v1/thumb?") for r in for_program.to_json()["results"])
