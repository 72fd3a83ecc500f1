"""The resident vector index: compressed codecs with full-precision rescoring, and commits applied as diffs.

Every table here is a real LanceDB table in tmp_path; answers are checked against numpy float32 exact
search over the same vectors, or against an answer known by construction.
"""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
from click.testing import CliRunner

from mmsearch.query.filters import build_filters
from mmsearch.search import choice
from mmsearch.search.choice import LibraryVectors
from mmsearch.search.codecs import KINDS, BadVectorSetting, Codec, auto_kind
from mmsearch.search.retention import measure
from mmsearch.search.vector import VectorSearch
from mmsearch.store import Library
from mmsearch.encoders import EmbeddingSpace

DIM = 64
SPACE = EmbeddingSpace("test", "vectors", "w", DIM)
LOSSY = [k for k in KINDS if k != "float32"]


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def row(path: str, vec: np.ndarray, **meta) -> dict:
    base = {"path": path, "folder": path.rsplit("/", 1)[0], "name": path.rsplit("/", 1)[1], "hash": path,
            "size": 1000, "mtime_ns": 0, "format": "JPEG", "width": 100, "height": 100, "text": "", "tags": []}
    return {**base, **meta, "vector": vec}


def clustered(n: int, seed: int = 0, clusters: int = 8) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = unit(rng.standard_normal((clusters, DIM)))
    return unit(centres[rng.integers(0, clusters, n)] + 0.6 * rng.standard_normal((n, DIM)) / np.sqrt(DIM))


def table_of(lib: Library, vectors: np.ndarray, prefix: str = "/lib/r", **meta):
    table = lib.table("image", SPACE, create=True)
    table.upsert_rows([row(f"{prefix}{i:05d}.jpg", v, **meta) for i, v in enumerate(vectors)])
    return table


def searcher(kind: str, meta_rows: int = 10**9, rerank: int | None = None) -> VectorSearch:
    return VectorSearch(10**9, setting=lambda table: kind, rerank=rerank, meta_rows=meta_rows)


def exact_top(vectors: np.ndarray, paths: list[str], q: np.ndarray, k: int) -> list[str]:
    scores = vectors @ q
    return [paths[i] for i in np.argsort(-scores, kind="stable")[:k]]


# meta_rows=0: metadata and filters come from the pinned LanceDB version; 10**9: from memory
BOTH_META = pytest.mark.parametrize("meta_rows", [10**9, 0], ids=["meta-in-memory", "meta-on-disk"])


@pytest.mark.parametrize("kind", KINDS)
@BOTH_META
def test_compressed_search_finds_the_constructed_answer(tmp_path, kind, meta_rows):
    """Ten rows at known cosines 0.95 .. 0.77 from the query among 500 that point elsewhere: every codec
    returns exactly those ten, in that order, with their exact cosines."""
    rng = np.random.default_rng(1)
    q = unit(rng.standard_normal(DIM))
    background = clustered(500, seed=2)
    background = unit(background - np.outer(background @ q, q))  # orthogonal to q: cosine 0
    cosines = np.linspace(0.95, 0.77, 10).astype(np.float32)
    near = unit(cosines[:, None] * q + np.sqrt(1 - cosines[:, None] ** 2) * background[:10])
    lib = Library(tmp_path / "lib")
    table = table_of(lib, np.concatenate([background, near]))
    found = searcher(kind, meta_rows).search(table, q, 10)
    assert [r["path"] for r, _ in found] == [f"/lib/r{500 + i:05d}.jpg" for i in range(10)]
    assert np.allclose([s for _, s in found], cosines, atol=1e-5)  # exact cosines, not the codec's estimate
    assert {"path", "name", "format", "width"} <= found[0][0].keys() and "vector" not in found[0][0]


@pytest.mark.parametrize("kind", LOSSY)
def test_rerank_restores_exact_order(tmp_path, kind):
    """Rows whose codes tie or invert (same signs, differing magnitudes) come back in exact float32 order."""
    rng = np.random.default_rng(3)
    q = unit(np.abs(rng.standard_normal(DIM)) + 0.5)
    close = unit(q + 0.08 * np.abs(rng.standard_normal((40, DIM))))  # every sign positive: one binary code
    vectors = np.concatenate([clustered(400, seed=4), close])
    lib = Library(tmp_path / "lib")
    table = table_of(lib, vectors)
    paths = [f"/lib/r{i:05d}.jpg" for i in range(len(vectors))]
    want = exact_top(vectors, paths, q, 20)
    got = searcher(kind).search(table, q, 20)
    assert [r["path"] for r, _ in got] == want
    assert np.allclose([s for _, s in got], np.sort(vectors @ q)[::-1][:20], atol=1e-5)
    # the engine's rerank asks for full-precision vectors by path: exactly the stored ones
    vecs = searcher(kind).vectors(table, want[:3] + ["/lib/missing.jpg"])
    assert set(vecs) == set(want[:3])
    assert all(np.array_equal(vecs[p], vectors[paths.index(p)]) for p in want[:3])


@pytest.mark.parametrize("kind", KINDS)
@BOTH_META
def test_filters_never_leak_through_the_compressed_path(tmp_path, kind, meta_rows):
    rng = np.random.default_rng(5)
    q = unit(rng.standard_normal(DIM))
    vectors = clustered(300, seed=6)
    vectors[:150] = unit(q + 0.3 * rng.standard_normal((150, DIM)) / np.sqrt(DIM))  # the nearest are all PNG
    lib = Library(tmp_path / "lib")
    table = lib.table("image", SPACE, create=True)
    table.upsert_rows([row(f"/lib/{'png' if i < 150 else 'jpg'}/r{i:05d}.jpg", v,
                           format="PNG" if i < 150 else "JPEG", width=i) for i, v in enumerate(vectors)])
    paths = [f"/lib/{'png' if i < 150 else 'jpg'}/r{i:05d}.jpg" for i in range(300)]
    vs = searcher(kind, meta_rows)
    for where, folder, allowed in ((["format=JPEG"], None, range(150, 300)),
                                   (["width>=140", "width<160"], None, range(140, 160)),
                                   ([], "/lib/jpg", range(150, 300))):
        filters = build_filters(table.schema, where, folder)
        found = vs.search(table, q, 25, filters)
        keep = np.array(list(allowed))
        want = exact_top(vectors[keep], [paths[i] for i in keep], q, 25)
        assert [r["path"] for r, _ in found] == want, where


@pytest.mark.parametrize("kind", KINDS)
@BOTH_META
def test_deletions_are_never_returned(tmp_path, kind, meta_rows):
    rng = np.random.default_rng(7)
    q = unit(rng.standard_normal(DIM))
    vectors = clustered(300, seed=8)
    vectors[:20] = unit(q + 0.2 * rng.standard_normal((20, DIM)) / np.sqrt(DIM))
    lib = Library(tmp_path / "lib")
    table = table_of(lib, vectors)
    vs = searcher(kind, meta_rows)
    paths = [f"/lib/r{i:05d}.jpg" for i in range(300)]
    assert {r["path"] for r, _ in vs.search(table, q, 10)} <= set(paths[:20])
    gone = paths[:20:2]
    table.delete_paths(gone)  # a file removed from disk
    moved = unit(-q)  # an upsert: the same path, a new vector pointing away
    table.upsert_rows([row(paths[1], moved)])
    for _ in range(2):
        found = [r["path"] for r, _ in vs.search(table, q, 30)]
        assert not set(found) & set(gone) and paths[1] not in found
        alive = [i for i in range(300) if paths[i] not in gone and i != 1]
        assert found == exact_top(vectors[alive], [paths[i] for i in alive], q, 30)
        assert vs.vectors(table, [paths[0], paths[1]]).keys() == {paths[1]}
        assert np.array_equal(vs.vectors(table, [paths[1]])[paths[1]], moved)
        table.optimize()  # a compaction rewrites every row under new ids: the same answer after it
    assert len(found) == 30


def test_a_commit_is_applied_as_a_diff_not_a_reload(tmp_path):
    rng = np.random.default_rng(9)
    lib = Library(tmp_path / "lib")
    table = table_of(lib, clustered(400, seed=10))
    vs = searcher("int8")
    q = unit(rng.standard_normal(DIM))
    vs.search(table, q, 5)
    index = vs._index(table)
    assert (index.loads, index.diffs) == (1, 0)
    new = unit(q + 0.01 * rng.standard_normal((3, DIM)))
    table.upsert_rows([row(f"/lib/new{i}.jpg", v) for i, v in enumerate(new)])
    found = [r["path"] for r, _ in vs.search(table, q, 3)]
    assert sorted(found) == ["/lib/new0.jpg", "/lib/new1.jpg", "/lib/new2.jpg"]
    assert (index.loads, index.diffs) == (1, 1)
    assert vs.snapshot(table).rows == 403


def test_a_held_snapshot_keeps_answering_from_its_own_version(tmp_path):
    """A search that took the snapshot before a commit answers from that version alone: no new rows, and
    rows deleted by the commit still there (the commit's diff builds a new snapshot, never edits the old)."""
    rng = np.random.default_rng(11)
    lib = Library(tmp_path / "lib")
    vectors = clustered(200, seed=12)
    table = table_of(lib, vectors)
    vs = searcher("binary")
    q = unit(rng.standard_normal(DIM))
    old = vs.snapshot(table)
    before = old.search_many(q[None], 10)[0]
    table.delete_paths([r["path"] for r, _ in before[:5]])
    table.upsert_rows([row("/lib/new.jpg", q)])
    new = vs.snapshot(table)
    assert new is not old and new.version > old.version
    assert [r["path"] for r, _ in new.search_many(q[None], 1)[0]] == ["/lib/new.jpg"]
    assert [(r["path"], round(s, 5)) for r, s in old.search_many(q[None], 10)[0]] == \
        [(r["path"], round(s, 5)) for r, s in before]
    assert old.rows == 200 and new.rows == 196


@pytest.mark.parametrize("kind", ["float32", "int8", "binary"])
def test_a_commit_landing_mid_search_is_not_seen_by_it(tmp_path, monkeypatch, kind):
    """A commit that lands between a search's shortlist and its reads of rescoring vectors and result rows
    (here forced there) changes nothing in that search's answer: every read is pinned to its version."""
    from mmsearch.search.resident import Snapshot

    rng = np.random.default_rng(21)
    q = unit(rng.standard_normal(DIM))
    vectors = clustered(300, seed=22)
    vectors[:15] = unit(q + 0.3 * rng.standard_normal((15, DIM)) / np.sqrt(DIM))
    lib = Library(tmp_path / "lib")
    table = table_of(lib, vectors)
    vs = searcher(kind, meta_rows=0)
    paths = [f"/lib/r{i:05d}.jpg" for i in range(300)]
    want = exact_top(vectors, paths, q, 10)
    shortlist = Snapshot._shortlist

    def commit_meanwhile(self, *args):
        out = shortlist(self, *args)
        table.delete_paths(want[:5])
        table.upsert_rows([row(want[5], unit(-q), width=1), row("/lib/new.jpg", q)])
        return out

    monkeypatch.setattr(Snapshot, "_shortlist", commit_meanwhile)
    found = vs.search(table, q, 10)
    assert [r["path"] for r, _ in found] == want and all(r["width"] == 100 for r, _ in found)
    monkeypatch.setattr(Snapshot, "_shortlist", shortlist)
    after = [r["path"] for r, _ in vs.search(table, q, 10)]
    assert after[0] == "/lib/new.jpg" and not set(after) & set(want[:6])


def test_searches_during_commits_see_whole_commits(tmp_path):
    """Writers commit generations of 8 rows and delete whole earlier generations while readers search:
    every answer holds all 8 rows of a generation or none (never half a commit)."""
    lib = Library(tmp_path / "lib")
    q = unit(np.ones(DIM))
    table = table_of(lib, clustered(100, seed=13))
    vs = searcher("int8", meta_rows=0)
    vs.search(table, q, 5)
    stop = threading.Event()
    problems: list[str] = []
    seen_versions: set[int] = set()

    def read() -> None:
        while not stop.is_set():
            found = vs.search(table, q, 500)
            seen_versions.add(vs.snapshot(table).version)
            gens: dict[str, int] = {}
            for r, _ in found:
                if r["path"].startswith("/gen/"):
                    g = r["path"].split("/")[2]
                    gens[g] = gens.get(g, 0) + 1
            problems.extend(f"generation {g}: {n} of 8 rows" for g, n in gens.items() if n != 8)

    readers = [threading.Thread(target=read) for _ in range(2)]
    for t in readers:
        t.start()
    try:
        rng = np.random.default_rng(14)
        for gen in range(12):
            vecs = unit(q + 0.5 * rng.standard_normal((8, DIM)) / np.sqrt(DIM))
            table.upsert_rows([row(f"/gen/{gen}/r{i}.jpg", v) for i, v in enumerate(vecs)])
            if gen % 3 == 2:
                table.delete_paths([f"/gen/{gen - 2}/r{i}.jpg" for i in range(8)])
    finally:
        stop.set()
        for t in readers:
            t.join()
    assert not problems, problems[:5]
    assert len(seen_versions) > 2  # the readers did run across several versions
    final = {r["path"].split("/")[2] for r, _ in vs.search(table, q, 500) if r["path"].startswith("/gen/")}
    assert final == {str(g) for g in range(12) if g % 3 != 0}


def test_changing_the_setting_reencodes_from_disk_without_embedding(tmp_path, monkeypatch):
    """library.json's setting switches a running searcher's codec within REREAD_S; the vectors are read back
    from the table (the encoder is never asked) and answers stay those of float32 exact."""
    monkeypatch.setattr(choice, "REREAD_S", 0.0)
    rng = np.random.default_rng(15)
    lib = Library(tmp_path / "lib")
    vectors = clustered(600, seed=16)
    table = table_of(lib, vectors)
    paths = [f"/lib/r{i:05d}.jpg" for i in range(600)]
    vs = VectorSearch(10**9, setting=LibraryVectors(lib))
    q = unit(vectors[7] + 0.2 * rng.standard_normal(DIM) / np.sqrt(DIM))  # a query like a photo of the library
    want = exact_top(vectors, paths, q, 10)
    seen = []
    for kind in ("auto", "int8", "binary", "float16", "float32"):
        lib.set_vector_setting(kind)
        assert [r["path"] for r, _ in vs.search(table, q, 10)] == want
        snap = vs.snapshot(table)
        seen.append((snap.setting, snap.codec.kind, snap.stats()["vector_bytes_per_item"]))
    assert seen == [("auto", "float32", 256), ("int8", "int8", 64), ("binary", "binary", 16),
                    ("float16", "float16", 128), ("float32", "float32", 256)]
    assert json.loads((lib.data_dir / "library.json").read_text())["vectors"] == "float32"
    with pytest.raises(BadVectorSetting, match="vectors='int4'"):
        lib.set_vector_setting("int4")


def test_service_switch_reembeds_nothing(settings, photo_dir, monkeypatch):
    from mmsearch.service import MMSearch

    monkeypatch.setattr(choice, "REREAD_S", 0.0)
    svc = MMSearch(settings.model_copy(update={"audio": False}))
    svc.index([photo_dir])
    before = [r.path for r in svc.search_text("a photo", 5)]
    calls = []
    monkeypatch.setattr(svc.encoder, "encode_images", lambda *a, **k: calls.append(1))
    svc.set_vectors("binary")
    assert [r.path for r in svc.search_text("a photo", 5)] == before  # 7 rows: binary's shortlist holds all
    table = svc.searcher.table()
    assert svc.searcher.vectors.snapshot(table).codec.kind == "binary" and not calls
    report = svc.vector_status(measure=True)[0]
    assert report["vectors"] == "binary" and report["measured_in_memory"]
    assert report["retention"]["recall_at_10"] == 1.0  # 7 rows: every one is in the shortlist


def test_cli_vectors_sets_and_reports(settings, photo_dir):
    from mmsearch.cli import cli

    base = ["--data-dir", str(settings.data_dir), "--model", settings.model, "--pretrained", "", "--device", "cpu",
            "--offline"]
    env = {"MMSEARCH_MODELS_DIR": str(settings.models_dir), "MMSEARCH_AUDIO": "false"}
    runner = CliRunner()
    res = runner.invoke(cli, base + ["index", "-q", "--vectors", "int8", str(photo_dir)], env=env)
    assert res.exit_code == 0, res.output
    assert json.loads((settings.data_dir / "library.json").read_text())["vectors"] == "int8"
    res = runner.invoke(cli, base + ["vectors", "binary", "--json"], env=env)
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    dim = int(json.loads(runner.invoke(cli, base + ["status", "--json", "--no-measure"], env=env).stdout)["tables"][0]["dim"])
    assert out["setting"] == "binary" and out["tables"][0]["vector_bytes_per_item"] == (dim + 63) // 64 * 8 + 8  # bits + centre, norms
    res = runner.invoke(cli, base + ["status"], env=env)
    assert "vectors: binary" in res.stdout and "bytes per item in memory" in res.stdout
    assert "recall@10 1.000 against float32 exact" in res.stdout
    res = runner.invoke(cli, base + ["vectors", "int4"], env=env)
    assert res.exit_code == 2 and "int4" in res.output


def test_auto_and_retention_on_clustered_rows():
    assert [auto_kind(n, 512) for n in (10_000, 262_144, 300_000, 2_000_000, 10_000_000)] == \
        ["float32", "float32", "int8", "int8", "binary"]
    vectors = clustered(4000, seed=17, clusters=16)
    assert measure(vectors, "float32").recall_at_10 == 1.0
    assert measure(vectors, "int8").recall_at_10 >= 0.99
    assert measure(vectors, "binary").recall_at_10 >= 0.98
    assert measure(vectors, "binary", rerank=1).recall_at_10 < 0.9  # no shortlist: binary alone loses much
    codec = Codec.fit("int8", vectors)
    assert np.abs(codec.decode(codec.encode(vectors)) - vectors).max() <= codec.scale.max() / 2 + 1e-6


# -- binary codes around centres ------------------------------------------------------------------
def test_binary_codes_order_rows_inside_a_cluster():
    """Rows of one tight cluster share their vector's sign bits; the codes around the centres still rank
    them by cosine (what kept binary + rerank at 0.61 on clustered vectors was exactly this)."""
    rng = np.random.default_rng(21)
    centre = unit(rng.standard_normal(DIM))
    rows_ = unit(centre + 0.35 * rng.standard_normal((2000, DIM)) / np.sqrt(DIM))
    q = unit(centre + 0.35 * rng.standard_normal(DIM) / np.sqrt(DIM))
    codec = Codec.fit("binary", rows_)
    estimate = codec.scores(codec.encode(rows_), q[None])[:, 0]
    exact = rows_ @ q
    assert np.corrcoef(estimate, exact)[0, 1] > 0.6
    signs = -np.count_nonzero((rows_ > 0) != (q > 0), axis=1)  # plain sign bits: mostly the centre's
    assert np.corrcoef(signs, exact)[0, 1] < np.corrcoef(estimate, exact)[0, 1] - 0.2
    top = set(np.argsort(-exact)[:10])
    assert top <= set(np.argsort(-estimate)[:codec.rerank * 10].tolist())  # the default shortlist holds them


def test_binary_codes_take_tiny_tables_and_odd_lengths():
    for n, dim in ((1, 64), (5, 33), (300, 100)):
        x = unit(np.random.default_rng(n).standard_normal((n, dim)))
        codec = Codec.fit("binary", x)
        codes = codec.encode(x)
        assert codes.shape == (n, codec.bytes_per_vector) and codec.bytes_per_vector % 8 == 0
        best = codec.scores(codes, x[:1])[:, 0]
        assert np.argmax(best) == 0 or np.isclose(best.max(), best[0])  # a row is closest to itself


# -- Matryoshka lengths ---------------------------------------------------------------------------
MRL = EmbeddingSpace("jina-v4", "tiny-mrl", "w", DIM)  # the encoder name trained for truncation


def mrl_rows(n: int, seed: int) -> np.ndarray:
    """Leading 16 dims carry most of each vector, as a Matryoshka model's training puts it there."""
    x = clustered(n, seed=seed)
    x[:, 16:] *= 0.25
    return unit(x)


def test_setting_parses_lengths_and_refuses_bad_ones():
    from mmsearch.search.codecs import parse_setting, with_dims

    assert parse_setting("int8@256") == ("int8", 256) and parse_setting("auto") == ("auto", None)
    assert with_dims("binary@128", None) == "binary@128" and with_dims("int8", 64) == "int8@64"
    for bad in ("int8@", "int8@0", "int4@64", "int8@x", "@64"):
        with pytest.raises(BadVectorSetting, match="@DIMS"):
            parse_setting(bad)


@pytest.mark.parametrize("kind", KINDS)
def test_truncated_codes_return_the_exact_answer(tmp_path, kind):
    vectors = mrl_rows(600, seed=22)
    lib = Library(tmp_path / "lib")
    table = lib.table("image", MRL, create=True)
    table.upsert_rows([row(f"/lib/r{i:05d}.jpg", v) for i, v in enumerate(vectors)])
    paths = [f"/lib/r{i:05d}.jpg" for i in range(600)]
    vs = searcher(f"{kind}@16")
    for seed in range(5):
        q = unit(vectors[seed * 7] + 0.1 * np.random.default_rng(seed).standard_normal(DIM) / np.sqrt(DIM))
        found = vs.search(table, q, 10)
        assert [r["path"] for r, _ in found] == exact_top(vectors, paths, q, 10)
        assert np.allclose([s for _, s in found], np.sort(vectors @ q)[::-1][:10], atol=1e-5)  # full-dim cosines
    snap = vs.snapshot(table)
    assert snap.codec.keep == 16 and not snap.codec.exact
    assert snap.stats()["dims"] == 16 and snap.stats()["vector_bytes_per_item"] == Codec(kind, DIM, keep=16).bytes_per_vector
    report = choice.table_report(table, f"{kind}@16", snap, measure=True)
    assert report["dims"] == 16 and report["full_dims"] == DIM and report["retention"]["dims"] == 16


def test_a_model_not_trained_for_truncation_keeps_every_dimension(tmp_path):
    lib = Library(tmp_path / "lib")
    table = table_of(lib, clustered(200, seed=23))  # SPACE: encoder "test", no Matryoshka training
    snap = searcher("int8@16").snapshot(table)
    assert snap.codec.keep is None and snap.stats()["dims"] == DIM
    assert "not trained" in choice.table_report(table, "int8@16", snap)["dims_note"]


def test_truncation_setting_reencodes_from_disk_and_refuses_other_models(settings, photo_dir, monkeypatch):
    from mmsearch.service import MMSearch

    monkeypatch.setattr(choice, "REREAD_S", 0.0)
    svc = MMSearch(settings.model_copy(update={"audio": False}))
    svc.index([photo_dir])
    with pytest.raises(BadVectorSetting, match=r"table image__\S+ holds open-clip .* not trained for Matryoshka"):
        svc.set_vectors("int8@16")
    assert svc.library().vector_setting == "auto"  # nothing stored
    lib = svc.library()
    mrl = lib.table("image", MRL, create=True)
    vectors = mrl_rows(50, seed=24)
    mrl.upsert_rows([row(f"/lib/m{i:05d}.jpg", v) for i, v in enumerate(vectors)])
    vs = VectorSearch(10**9, setting=LibraryVectors(lib))
    q = vectors[3]
    before = [r["path"] for r, _ in vs.search(mrl, q, 5)]
    lib.set_vector_setting("binary@16")  # what `mmsearch vectors binary --dims 16` stores for a jina library
    assert [r["path"] for r, _ in vs.search(mrl, q, 5)] == before
    assert vs.snapshot(mrl).codec.keep == 16 and vs._index(mrl).loads == 2  # re-encoded from the stored rows


def test_cli_dims_is_refused_for_clip_with_a_clear_message(settings, photo_dir):
    from mmsearch.cli import cli

    base = ["--data-dir", str(settings.data_dir), "--model", settings.model, "--pretrained", "", "--device", "cpu",
            "--offline"]
    env = {"MMSEARCH_MODELS_DIR": str(settings.models_dir), "MMSEARCH_AUDIO": "false"}
    runner = CliRunner()
    assert runner.invoke(cli, base + ["index", "-q", str(photo_dir)], env=env).exit_code == 0
    res = runner.invoke(cli, base + ["vectors", "int8", "--dims", "16"], env=env)
    assert res.exit_code != 0 and "not trained for Matryoshka truncation" in res.output
    assert "Traceback" not in res.output
    assert json.loads((settings.data_dir / "library.json").read_text()).get("vectors", "auto") == "auto"
    res = runner.invoke(cli, base + ["--data-dir", str(settings.data_dir) + "-new", "index", "-q", "--dims", "16",
                                     str(photo_dir)], env=env)  # a new library: the model about to embed decides
    assert res.exit_code != 0 and "was not trained for Matryoshka truncation" in res.output


@pytest.mark.parametrize("kind", ["float32", "int8"])
def test_rerank_vectors_by_path_survive_path_hash_collisions(tmp_path, monkeypatch, kind) -> None:
    """Path hashes only shortlist rows: the stored path confirms each one, so colliding hashes never hand
    one file another file's vector."""
    from mmsearch.search import resident

    monkeypatch.setattr(resident, "path_hashes", lambda paths: np.array([len(p) for p in paths], np.int64))
    lib = Library(tmp_path / "lib", create=True)
    vectors = clustered(30, seed=4)
    table = table_of(lib, vectors)  # every path has the same length: one hash for all
    snap = searcher(kind).snapshot(table)
    got = snap.vectors_for_paths(["/lib/r00007.jpg", "/lib/r00011.jpg"])
    assert sorted(got) == ["/lib/r00007.jpg", "/lib/r00011.jpg"]
    assert np.abs(got["/lib/r00007.jpg"] - vectors[7]).max() < 1e-6
    assert np.abs(got["/lib/r00011.jpg"] - vectors[11]).max() < 1e-6


def test_the_binary_shortlist_grows_with_the_rows_searched(tmp_path, monkeypatch):
    """binary's default shortlist is its 1M-row one up to 1M rows, then grows as (rows / 1M) ** 0.7 (x5 at 10M:
    the 10,000 rows that kept recall@10 0.98 there); other codecs keep theirs. The search uses the rows it
    searches: a filtered search over few rows keeps the small shortlist."""
    from mmsearch.search import codecs, resident
    from mmsearch.search.codecs import Codec

    binary_codec, int8 = Codec("binary", DIM), Codec("int8", DIM)
    assert binary_codec.rerank_for(200_000) == binary_codec.rerank_for(1_000_000) == binary_codec.rerank == 200
    assert binary_codec.rerank_for(10_000_000) == 1002 and binary_codec.rerank_for(3_000_000) == 432
    assert int8.rerank_for(10_000_000) == int8.rerank == 10

    monkeypatch.setattr(codecs, "BINARY_GROWS_ABOVE", 100)  # a 1,000-row table acts as a 10M one
    asked, rows = [], []
    real_short, real_for = resident.Snapshot._shortlist, Codec.rerank_for
    monkeypatch.setattr(resident.Snapshot, "_shortlist",
                        lambda self, q, keeps, short: asked.append(short) or real_short(self, q, keeps, short))
    monkeypatch.setattr(Codec, "rerank_for", lambda self, n: rows.append(n) or real_for(self, n))
    lib = Library(tmp_path / "lib")
    vectors = clustered(1000, seed=7)
    table = lib.table("image", SPACE, create=True)
    table.upsert_rows([row(f"/lib/{'a' if i < 50 else 'b'}/r{i:05d}.jpg", v) for i, v in enumerate(vectors)])
    search = searcher("binary")
    search.search(table, vectors[0], 1)
    assert (rows[-1], asked[-1]) == (1000, 1000)  # factor 1002 at 10x the threshold, not 200: the whole table
    search.search(table, vectors[0], 1, build_filters(table.schema, [], "/lib/a"))
    assert rows[-1] == 50  # the rows the filter leaves, not the table's


class VectorsByText:
    """A text 'q<i>' means the i-th query vector given: the engine's text path with answers known exactly."""

    def __init__(self, queries: np.ndarray) -> None:
        from mmsearch.encoders import Encoder

        class _Enc(Encoder):
            name = "by-text"
            modalities = frozenset({"text"})
            space = SPACE

            def _load(self) -> None: ...

            def _unload(self) -> None: ...

            def encode_text(self, texts):
                return np.stack([queries[int(t[1:])] for t in texts])

        self.encoder = _Enc()


@pytest.mark.parametrize("kind", ["binary", "int8"])
def test_the_engine_rescores_for_the_answer_it_shows_not_its_fusion_shortlist(tmp_path, monkeypatch, kind):
    """The engine asks each table for a fusion shortlist (100) to show k (10). A compressed copy rescores
    k x its factor rows from disk for that (10,020 at 10M binary rows), not shortlist x factor (100,200, which
    took ~12 s a query at 10M rows): and the k shown are still float32 exact's top k."""
    from mmsearch.query.engine import QueryEngine
    from mmsearch.query.parts import QueryOptions, QueryPart
    from mmsearch.search import resident

    lib = Library(tmp_path / "lib")
    vectors = clustered(3000, seed=11)
    table = table_of(lib, vectors)
    paths = [f"/lib/r{i:05d}.jpg" for i in range(len(vectors))]
    queries = unit(vectors[[5, 900, 2400]] + 0.05 * np.random.default_rng(3).standard_normal((3, DIM)))
    asked = []
    real = resident.Snapshot._shortlist
    monkeypatch.setattr(resident.Snapshot, "_shortlist",
                        lambda self, q, keeps, short: asked.append(short) or real(self, q, keeps, short))
    engine = QueryEngine(lib, [VectorsByText(queries).encoder], searcher(kind))
    factor = Codec(kind, DIM).rerank
    for j, q in enumerate(queries):
        answer = engine.run([QueryPart("text", f"q{j}")], QueryOptions(k=5, shortlist=100, targets=("image",)))
        assert [h.result.path for h in answer.hits] == exact_top(vectors, paths, q, 5)
        # sized for the 5 shown (binary 1,000 rows; int8 5 x 10 = 50, so the 100 the engine asks for), never
        # for the whole shortlist (binary: the whole 3,000-row table; int8: 1,000)
        assert asked[-1] == max(100, 5 * factor) < min(len(vectors), 100 * factor)
