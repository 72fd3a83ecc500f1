"""What the full-precision rescoring of a shortlist costs: LanceDB `take` of N random rows' float32 vectors
from a table built by bench_vectors.py (100k-row fragments, so a row id is fragment << 32 | offset).

    .venv/bin/python bench/bench_take.py bench/results/tmp/vectors/lib-10000000 10000000
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

import numpy as np  # noqa: E402

import bench_vectors as bv  # noqa: E402
from mmsearch.store import Library  # noqa: E402
from mmsearch.store.pinned import PinnedVersion  # noqa: E402


def main() -> None:
    data_dir, rows = Path(sys.argv[1]), int(sys.argv[2])
    table = Library(data_dir, create=False).table("image", bv.SPACE)
    pinned = PinnedVersion(table, table.version)
    rng = np.random.default_rng(0)
    for n in (400, 2000, 5000, 20000):
        for rep in range(3):
            ids = np.sort(rng.choice(rows, n, replace=False)).astype(np.uint64)
            row_ids = ((ids // bv.CHUNK) << np.uint64(32)) | (ids % bv.CHUNK)
            t0 = time.perf_counter()
            got = pinned.take(row_ids, ["vector"]).num_rows
            print(n, rep, got, f"{(time.perf_counter() - t0) * 1000:.0f} ms", flush=True)


if __name__ == "__main__":
    main()
