"""Product catalogs: schema handling, incremental update by product id, filters from the catalog's own
columns, keyword search over title/description/SKU, text vectors, and the CLI end to end."""

from __future__ import annotations

import json
import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from mmsearch.cli import cli
from mmsearch.query.parts import QueryPart
from mmsearch.service import MMSearch
from mmsearch.workflows.catalog import CatalogIndexer, Catalogs
from mmsearch.workflows.catalog_file import CatalogError, column_name, read_catalog
from mmsearch.workflows.catalog_search import CatalogSearch
from tests.workflow_support import PRODUCTS, BagOfWords, make_shop


@pytest.fixture
def run(settings):
    runner = CliRunner()
    base = ["--data-dir", str(settings.data_dir), "--model", settings.model, "--pretrained", "", "--device", "cpu",
            "--offline"]

    def invoke(*args: str):
        return runner.invoke(cli, base + list(args), catch_exceptions=False,
                             env={"MMSEARCH_MODELS_DIR": str(settings.models_dir)})

    return invoke


def test_cli_imports_filters_and_searches_a_catalog(run, tmp_path):
    shop = make_shop(tmp_path / "shop")
    res = run("index", str(shop), "--id-column", "SKU")
    assert res.exit_code == 0, res.output
    assert "catalog products: 4 products, 4 added" in res.stderr and "4 images embedded" in res.stderr

    filters = [json.loads(line) for line in run("catalog", "filters", "products").stdout.splitlines()]
    by_col = {f["column"]: f for f in filters}
    assert by_col["price"]["kind"] == "range" and (by_col["price"]["low"], by_col["price"]["high"]) == (8.0, 1299.0)
    assert by_col["category"] == {"column": "category", "kind": "choice", "low": None, "high": None,
                                  "choices": ["home", "kitchen", "posters"]}
    assert by_col["stock"]["kind"] == "range"

    # The SKU is in the keyword index: its product comes first whatever the random model thinks.
    hits = [json.loads(line) for line in run("catalog", "search", "products", "RKT-03").stdout.splitlines()]
    assert hits[0]["product_id"] == "RKT-03" and hits[0]["price"] == 1299.0
    assert any(m["kind"] == "keyword" for m in hits[0]["matched"])
    assert hits[0]["path"].endswith("img/rocket-launch.jpg")

    res = run("catalog", "search", "products", "print", "--where", "category=posters", "--where", "price<100")
    assert [json.loads(line)["product_id"] for line in res.stdout.splitlines()] == ["CAT-01"]
    assert "only 1 item matches the filters" in res.stderr

    res = run("catalog", "search", "products", "x", "--where", "colour=red")
    assert res.exit_code != 0 and "unknown filter column 'colour'" in res.output and "price" in res.output

    out = tmp_path / "found.csv"
    res = run("catalog", "search", "products", "wallpaper", "-k", "2", "--export", str(out), "--copy-to",
              str(tmp_path / "handoff"))
    assert res.exit_code == 0, res.output
    header = out.read_text().splitlines()[0].split(",")
    assert header[:6] == ["rank", "path", "modality", "score", "fused_score", "matched"] and "price" in header
    assert sorted(p.name for p in (tmp_path / "handoff").iterdir())[0].startswith("001-brick-wall")

    status = json.loads(run("status", "--json").stdout)
    assert [t["rows"] for t in status["tables"] if t["modality"] == "product"] == [4]


def test_reindex_updates_only_changed_products(settings, tmp_path):
    service = MMSearch(settings)
    shop = make_shop(tmp_path / "shop")
    indexer = CatalogIndexer.for_service(service)
    first = indexer.index(shop, id_column="sku")
    assert (first.added, first.embedded) == (4, 4)

    changed = [dict(p) for p in PRODUCTS]
    changed[1]["Price"] = "$9.50"  # text change only: keeps its vector
    changed[0]["image"] = "img/man-with-camera.jpg"  # a new image file
    del changed[3]  # gone from the file
    changed.append({**PRODUCTS[3], "SKU": "GRS-05", "Title": "Grass mat", "image": "img/grass.jpg"})
    make_shop(tmp_path / "shop", changed)
    second = CatalogIndexer.for_service(service).index(shop, id_column="sku")
    assert (second.added, second.updated, second.unchanged, second.removed) == (1, 2, 1, 1)
    assert second.embedded == 2  # the new product's photo and the replaced photo; the price edit embeds nothing

    table = Catalogs(service.library()).image_table("products")
    rows = {r["product_id"]: r for r in table.all_rows().to_pylist()}
    assert sorted(rows) == ["CAT-01", "GRS-05", "MUG-02", "RKT-03"]
    assert rows["MUG-02"]["price"] == 9.5 and rows["CAT-01"]["image_file"].endswith("man-with-camera.jpg")

    third = CatalogIndexer.for_service(service).index(shop, id_column="sku")
    assert (third.unchanged, third.embedded, third.updated) == (4, 0, 0)

    # A new column changes the schema: the table is rebuilt from the stored vectors, nothing re-embedded.
    make_shop(tmp_path / "shop", [{**p, "Brand": "acme" if i % 2 else "zenith"} for i, p in enumerate(changed)])
    fourth = CatalogIndexer.for_service(service).index(shop, id_column="sku")
    assert fourth.rebuilt and fourth.embedded == 0 and fourth.updated == 4
    answer = CatalogSearch.for_service(service).run("products", [QueryPart("text", "anything")], ["brand=acme"])
    assert sorted(h.product_id for h in answer.hits) == ["GRS-05", "MUG-02"]


def test_types_names_and_formats(tmp_path):
    make_shop(tmp_path)
    table = pa.table({
        "id": [1, 2], "Name": ["Mug", "Cup"], "Unit Price": ["€3.50", "€1,200"], "size": ["S", "L"],
        "zip": ["01234", "99999"], "on_sale": [True, False], "Date": pa.array([0, 86400000], pa.date64()),
        "picture": ["img/coffee-cup.jpg", "https://example.com/x.jpg"],
    })
    pq.write_table(table, tmp_path / "shop.parquet")
    rows = read_catalog(tmp_path / "shop.parquet")
    spec = rows.spec
    assert (spec.id_column, spec.image_column, spec.title_column) == ("id", "picture", "product_name")
    assert spec.columns == {"id": "integer", "product_name": "text", "unit_price": "number", "product_size": "text",
                            "zip": "text", "on_sale": "text", "product_date": "date", "picture": "text"}
    assert rows.table.column("unit_price").to_pylist() == [3.5, 1200.0]
    assert column_name("2nd colour") == "c_2nd_colour" and column_name("path") == "product_path"

    (tmp_path / "x.jsonl").write_text('{"sku": "a", "image": "img/grass.jpg", "tags": "green, lawn"}\n'
                                      '{"sku": "a", "image": "img/gravel.jpg"}\n')
    with pytest.raises(CatalogError, match="product ids repeat in column 'sku'"):
        read_catalog(tmp_path / "x.jsonl")
    (tmp_path / "y.csv").write_text("code,image\n1,img/grass.jpg\n")
    with pytest.raises(CatalogError, match="--id-column"):
        read_catalog(tmp_path / "y.csv")
    assert read_catalog(tmp_path / "y.csv", id_column="CODE").spec.id_column == "code"


def test_urls_are_skipped_and_tags_split(settings, tmp_path):
    service = MMSearch(settings)
    make_shop(tmp_path)
    (tmp_path / "t.jsonl").write_text('{"sku": "a", "image": "img/grass.jpg", "tags": "green; lawn"}\n'
                                      '{"sku": "b", "image": "https://example.com/x.jpg"}\n'
                                      '{"sku": "c", "image": "img/missing.jpg"}\n')
    report = CatalogIndexer.for_service(service).index(tmp_path / "t.jsonl")
    assert report.added == 1 and [why for _, why in report.skipped][0].startswith("image https://")
    assert "not found" in report.skipped[1][1]
    answer = CatalogSearch.for_service(service).run("t", [QueryPart("text", "x")], ["tags~lawn"])
    assert [h.product_id for h in answer.hits] == ["a"]


def test_text_vectors_of_title_and_description_fuse(settings, tmp_path):
    service = MMSearch(settings)
    shop = make_shop(tmp_path / "shop")
    words = BagOfWords()
    library = service.library(create=True)
    report = CatalogIndexer(library, service.encoder, [words]).index(shop, id_column="SKU")
    assert report.text_model and "bag-of-words" in report.text_model
    names = [t.name for t in Catalogs(library).tables("products")]
    assert len(names) == 2 and any("__text__" in n for n in names)
    search = CatalogSearch(library, [service.encoder, words], service.searcher.vectors)
    # No keyword list (hybrid off): only the text vectors know that "ceramic cup" is the mug.
    answer = search.run("products", [QueryPart("text", "ceramic cup hot")], hybrid=False, k=4)
    assert text_ranks(answer)["MUG-02"] == 1
    assert {c.table for c in answer.hits[0].hit.contributions} == set(names)  # both lists fused
    # Editing a description re-embeds that product's text only.
    changed = [dict(p) for p in PRODUCTS]
    changed[3]["Description"] = "ceramic tiles"
    make_shop(tmp_path / "shop", changed)
    again = CatalogIndexer(library, service.encoder, [words]).index(shop, id_column="SKU")
    assert (again.updated, again.embedded) == (1, 0)
    answer = search.run("products", [QueryPart("text", "ceramic tiles")], hybrid=False, k=4)
    assert text_ranks(answer)["BRK-04"] == 1


def text_ranks(answer) -> dict[str, int]:
    return {h.product_id: c.rank for h in answer.hits for c in h.hit.contributions if "__text__" in c.table}


def test_unknown_catalog_names_the_ones_there(settings, tmp_path):
    service = MMSearch(settings)
    CatalogIndexer.for_service(service).index(make_shop(tmp_path / "s"), id_column="SKU")
    with pytest.raises(CatalogError, match=r"no catalog named 'nope'.*catalogs: products"):
        CatalogSearch.for_service(service).run("nope", [QueryPart("text", "x")])
    assert Catalogs(service.library()).drop("products") == 1 and Catalogs(service.library()).names() == []
    shutil.rmtree(tmp_path / "s")
