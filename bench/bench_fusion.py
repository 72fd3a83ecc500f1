"""Query engine latency: 1-, 2- and 3-part queries over two tables of N rows each (default 100k).

Two image tables in two embedding spaces (as with a second image model added to a library) hold
clustered synthetic vectors; a query part is embedded by a stand-in encoder that maps text to a
cluster direction instantly, so the numbers are the engine's own cost: routing, the concurrent
(part, table) searches, keyword search, exact rerank and fusion. Text-encoding time of a real model
is reported by bench_core.py and adds once per part per encoder.

    .venv/bin/python bench/bench_fusion.py [--rows 100000] [--queries 30] [--out bench/results]
"""

from __future__ import annotations

import argparse
import json
import zlib
from pathlib import Path

import numpy as np

from common import CpuShare, interleaved, machine
from query_bench import Clusters, build_table

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

    def __init__(self, space: EmbeddingSpace) -> None:
        super().__init__()
        self._space = space
        self._clusters = Clusters(space.dim)

    @property
    def space(self) -> EmbeddingSpace:
        return self._space

    def _load(self) -> None: ...

    def _unload(self) -> None: ...

    def encode_text(self, texts):
        rng = np.random.default_rng(zlib.crc32(texts[0].encode()))
        return self._clusters.sample(1, rng)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=30)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = ap.parse_args()
    work = args.out / "tmp" / "fusion"
    spaces = [EmbeddingSpace("bench", "model-a", "w", DIM), EmbeddingSpace("bench", "model-b", "w", DIM)]
    lib, table_a, build_s = build_table(work / "lib", spaces[0], args.rows)
    table_b = lib.table("image", spaces[1], create=True)
    table_b.upsert(table_a.table.to_arrow().cast(table_b.table.schema))  # same files, second space
    for t in (table_a, table_b):
        t.maintain(ann_threshold=10**9)  # keyword index; exact search (100k is below the ANN threshold)
    lib = Library(work / "lib", create=False)
    engine = QueryEngine(lib, [InstantText(s) for s in spaces], VectorSearch())
    words = ["dog", "beach", "night", "market", "snow", "boat", "cake", "forest"]

    def parts(n: int, i: int) -> list[QueryPart]:
        base = [QueryPart("text", f"{words[i % 8]} {i}"), QueryPart("text", f"{words[(i + 3) % 8]} {i}"),
                QueryPart("text", f"{words[(i + 5) % 8]} {i}", -0.5)]
        return base[:n]

    fns = {}
    for hybrid in (False, True):
        for n in (1, 2, 3):
            opts = QueryOptions(k=10, hybrid=hybrid, shortlist=100)
            fns[f"{n}-part{' +hybrid' if hybrid else ''}"] = (lambda n=n, o=opts: lambda i: engine.run(parts(n, i), o))()
    vs = VectorSearch()
    q = InstantText(spaces[0]).encode_text(["dog"])[0]
    fns["single vector search (one table)"] = lambda i: vs.search(table_a, q, 100)
    share = CpuShare()
    result = interleaved(fns, args.queries, warmup=2)
    out = {"machine": machine(), "rows_per_table": args.rows, "tables": 2, "build_s": round(build_s, 1),
           "latency_ms": result, "others_cpu_share": share.others()}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "fusion.json").write_text(json.dumps(out, indent=2))
    lines = [f"# Query engine latency, {args.rows:,} rows per table, 2 tables", "",
             "| query | p50 ms | p95 ms |", "|---|---|---|"]
    lines += [f"| {name} | {r['p50']:.1f} | {r['p95']:.1f} |" for name, r in result.items()]
    lines += ["", f"Other processes used {out['others_cpu_share']:.0%} of the CPU during the run.",
              "Command: `.venv/bin/python bench/bench_fusion.py " + f"--rows {args.rows} --queries {args.queries}`"]
    (args.out / "fusion.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
