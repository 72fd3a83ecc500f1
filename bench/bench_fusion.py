"""Query engine latency: 1-, 2- and 3-part queries over two tables of N rows each (default 100k).

Two image tables in two embedding spaces (as with a second image model added to a library) hold the
same files with different vectors: each space has its own cluster centres and its own draws, as two
models would embed the same photos differently. Every row's keyword text holds three words of a
64-word vocabulary (like words in file and folder names), so each query word matches ~4.7% of the rows
and the "+hybrid" rows time BM25 searches that find something; the run checks that they do. A query
part is embedded by a stand-in encoder that maps text to a cluster direction of its own space
instantly, so the numbers are the engine's own cost: routing, the concurrent (part, table) searches,
keyword search, exact rerank and fusion. Text-encoding time of a real model is reported by
bench_core.py and adds once per part per encoder. "n-part" means n positive parts, each searched in
both tables; the last row adds a negative part, which is not searched but rescored over the candidates.

    .venv/bin/python bench/bench_fusion.py [--rows 100000] [--queries 30] [--out bench/results]
"""

from __future__ import annotations

import argparse
import json
import os
import zlib
from pathlib import Path

import numpy as np

from common import CpuShare, interleaved, machine
from query_bench import Clusters, build_table, fill_table

from mmsearch.encoders.base import EmbeddingSpace, Encoder
from mmsearch.query.engine import QueryEngine
from mmsearch.query.parts import QueryOptions, QueryPart
from mmsearch.search.vector import VectorSearch
from mmsearch.store import Library

DIM = 512


class InstantText(Encoder):
    """Text -> a vector near one of the clusters the table was built from (no model compute)."""

    name = "bench-instant"
    modalities = frozenset({"text"})

    def __init__(self, space: EmbeddingSpace, seed: int) -> None:
        super().__init__()
        self._space = space
        self._clusters = Clusters(space.dim, seed)  # the centres of this space's table

    @property
    def space(self) -> EmbeddingSpace:
        return self._space

    def _load(self) -> None: ...

    def _unload(self) -> None: ...

    def encode_text(self, texts):
        rng = np.random.default_rng(zlib.crc32(texts[0].encode()))
        return self._clusters.sample(1, rng)


VOCAB = ["dog", "beach", "night", "market", "snow", "boat", "cake", "forest", "city", "river", "bridge", "cat",
         "garden", "wedding", "party", "mountain", "lake", "train", "car", "street", "sunset", "rain", "flower",
         "bird", "horse", "house", "church", "castle", "museum", "harbour", "island", "desert", "field", "farm",
         "school", "office", "kitchen", "dinner", "breakfast", "coffee", "concert", "festival", "football",
         "tennis", "bike", "hiking", "camping", "skiing", "picnic", "birthday", "holiday", "family", "friends",
         "baby", "portrait", "selfie", "screenshot", "receipt", "document", "poster", "painting", "statue",
         "fountain", "tower"]
SEEDS = (0, 1)  # cluster centres of space a and space b


def row_words(i: int) -> str:
    """Three vocabulary words for row i, fixed by i (as a file's name and folder are)."""
    rng = np.random.default_rng(i)
    return " ".join(VOCAB[j] for j in rng.choice(len(VOCAB), 3, replace=False))


def query_parts(n: int, i: int, negative: bool = False) -> list[QueryPart]:
    """n positive two-word text parts (distinct words), plus a negative one if asked."""
    words = [VOCAB[(7 * i + 5 * j) % len(VOCAB)] for j in range(2 * n + 2)]
    parts = [QueryPart("text", f"{words[2 * j]} {words[2 * j + 1]}") for j in range(n)]
    if negative:
        parts.append(QueryPart("text", f"{words[2 * n]} {words[2 * n + 1]}", -0.5))
    return parts


def build(work: Path, rows: int) -> tuple[Library, list[EmbeddingSpace], float]:
    spaces = [EmbeddingSpace("bench", "model-a", "w", DIM), EmbeddingSpace("bench", "model-b", "w", DIM)]
    lib, table_a, _ = build_table(work / "lib", spaces[0], 0)
    build_s = fill_table(table_a, rows, Clusters(DIM, SEEDS[0]), np.random.default_rng(1), row_words)
    table_b = lib.table("image", spaces[1], create=True)
    # The same files in a second space: other centres, other draws, so the two tables disagree as two models do.
    build_s += fill_table(table_b, rows, Clusters(DIM, SEEDS[1]), np.random.default_rng(2), row_words)
    for t in (table_a, table_b):
        t.maintain(ann_threshold=10**9)  # keyword index; exact search (100k is below the ANN threshold)
    return Library(work / "lib", create=False), spaces, build_s


def check(engine: QueryEngine, lib: Library, spaces: list[EmbeddingSpace], queries: int) -> dict:
    """What each configuration searches: lists fused and keyword hits, so no row times an empty search."""
    seen: dict = {}
    for n in (1, 2, 3):
        for hybrid in (False, True):
            answer = engine.run(query_parts(n, 0), QueryOptions(k=10, hybrid=hybrid, shortlist=100))
            kinds = [c.kind for h in answer.hits for c in h.contributions]
            seen[f"{n}-part{' +hybrid' if hybrid else ''}"] = {
                "lists_fused": answer.lists, "keyword_contributions_in_top10": kinds.count("keyword")}
            want = n * len(spaces) * (2 if hybrid else 1)
            if answer.lists != want:
                raise RuntimeError(f"{n}-part hybrid={hybrid}: {answer.lists} lists fused, want {want}")
    answer = engine.run(query_parts(2, 0, negative=True), QueryOptions(k=10, hybrid=True, shortlist=100))
    seen["2-part + 1 negative +hybrid"] = {"lists_fused": answer.lists}  # the negative: rescored, not searched
    table = lib.table("image", spaces[0])
    shortlisted = [len(table.keyword_search(p.value, 100)) for i in range(queries) for p in query_parts(3, i, True)]
    if min(shortlisted) < 100:
        raise RuntimeError(f"a timed keyword search found only {min(shortlisted)} rows of the 100 asked for")
    seen["keyword_rows_matching_first_query"] = len(table.keyword_search(query_parts(1, 0)[0].value, 100_000))
    a, b = (lib.table("image", s) for s in spaces)
    va = a.table.search().select(["vector"]).limit(1).to_arrow().column("vector")[0].values.to_numpy()
    vb = b.table.search().select(["vector"]).limit(1).to_arrow().column("vector")[0].values.to_numpy()
    seen["cosine_of_first_rows_vectors_across_tables"] = round(float(va @ vb), 3)
    return seen


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=30)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = ap.parse_args()
    work = args.out / "tmp" / "fusion"
    start_machine = machine()
    build_share = CpuShare()
    lib, spaces, build_s = build(work, args.rows)
    build_others = build_share.others()
    engine = QueryEngine(lib, [InstantText(s, seed) for s, seed in zip(spaces, SEEDS)], VectorSearch())
    checks = check(engine, lib, spaces, args.queries + 2)

    fns = {}
    for hybrid in (False, True):
        for n in (1, 2, 3):
            opts = QueryOptions(k=10, hybrid=hybrid, shortlist=100)
            fns[f"{n}-part{' +hybrid' if hybrid else ''}"] = (lambda n=n, o=opts: lambda i: engine.run(query_parts(n, i), o))()
    neg = QueryOptions(k=10, hybrid=True, shortlist=100)
    fns["2-part + 1 negative +hybrid"] = lambda i: engine.run(query_parts(2, i, negative=True), neg)
    vs = VectorSearch()
    table_a = lib.table("image", spaces[0])
    q = InstantText(spaces[0], SEEDS[0]).encode_text(["dog"])[0]
    fns["single vector search (one table)"] = lambda i: vs.search(table_a, q, 100)
    fns["single keyword search (one table)"] = lambda i: table_a.keyword_search(query_parts(1, i)[0].value, 100)
    share = CpuShare()
    result = interleaved(fns, args.queries, warmup=2)
    out = {"machine": {**start_machine, "loadavg_end": os.getloadavg()}, "rows_per_table": args.rows, "tables": 2,
           "build_s": round(build_s, 1), "latency_ms": result, "checks": checks,
           "others_cpu_share": share.others(), "others_cpu_share_during_build": build_others}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "fusion.json").write_text(json.dumps(out, indent=2))
    m = out["machine"]
    lines = [f"# Query engine latency, {args.rows:,} rows per table, 2 tables", "",
             f"{m['cpu']}, {m['cores_usable']} usable cores, mmsearch {m['mmsearch_source']}; load average "
             f"{'/'.join(f'{x:.2f}' for x in m['loadavg_start'])} at start, "
             f"{'/'.join(f'{x:.2f}' for x in m['loadavg_end'])} at end.", "",
             "The two tables hold the same files with different vectors (each space its own clusters; the first "
             f"row's vectors have cosine {checks['cosine_of_first_rows_vectors_across_tables']} across the "
             "tables). Each row's keyword text has three words of a 64-word vocabulary; a query part is two "
             f"words (the first query's words match {checks['keyword_rows_matching_first_query']:,} rows). "
             "n-part = n positive parts, each searched in both tables (and by keyword with +hybrid).", "",
             "| query | p50 ms | p95 ms | lists fused |", "|---|---|---|---|"]
    lines += [f"| {name} | {r['p50']:.1f} | {r['p95']:.1f} | {checks.get(name, {}).get('lists_fused', '')} |"
              for name, r in result.items()]
    lines += ["", f"**Taken under load:** other processes used {out['others_cpu_share']:.0%} of the CPU during the "
              "timed queries (2 shared cores), so treat differences under ~10% as noise.",
              "Command: `.venv/bin/python bench/bench_fusion.py " + f"--rows {args.rows} --queries {args.queries}`"]
    (args.out / "fusion.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
