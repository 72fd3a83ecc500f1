"""What decoding alone leaves behind in a process: the mixed pictures of ingest_memory.py decoded by two
threads, as the indexer's prepare step does (read, decode at draft size, flatten, resize), under glibc settings.

    .venv/bin/python bench/decode_memory.py /tmp/mmsearch-mem/bases    # the bases ingest_memory.py made

Each setting runs in a fresh process; prints RSS (MB) at the start and after each round over the files.
"""

from __future__ import annotations

import ctypes
import glob
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

from common import ROOT

SETTINGS = {"glibc defaults": [], "mmap threshold 1 MiB": [(-3, 1 << 20)], "2 arenas": [(-8, 2)],
            "both (what the indexer sets)": [(-3, 1 << 20), (-8, 2)]}


def _rss() -> float:
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmRSS:")) / 1024


def child(folder: str, setting: str) -> None:
    from mmsearch.media.images import decode_image

    libc = ctypes.CDLL("libc.so.6")
    for param, value in SETTINGS[setting]:
        libc.mallopt(param, value)
    files = sorted(glob.glob(f"{folder}/*"))

    def work(path: str) -> None:
        with open(path, "rb") as fh:
            decode_image(fh.read(), path, 10**9, 224).image.resize((224, 224))

    curve = [round(_rss())]
    with ThreadPoolExecutor(2) as pool:
        for _ in range(4):
            list(pool.map(work, files * 2))
            curve.append(round(_rss()))
    print(json.dumps(curve))


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3])
        return
    for setting in SETTINGS:
        out = subprocess.run([sys.executable, __file__, "--child", sys.argv[1], setting], capture_output=True,
                             text=True, cwd=ROOT, check=True)
        print(f"{setting}: RSS MB start, after each round = {out.stdout.strip()}")


if __name__ == "__main__":
    main()
