"""Workflow timings per 1,000 images: perceptual hashing, near-duplicate clustering, copy lookup; OCR.

    .venv/bin/python bench/bench_workflows.py --n 1000 [--ocr 20]

Images are the sample photos, each cut, scaled and re-encoded at random (512 px on the long side), so
decoding costs what a real library's photos cost.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from mmsearch.store.library import Library
from mmsearch.workflows.dupes import PerceptualHashes, clusters, copies_of

SAMPLES = Path(__file__).resolve().parent.parent / "assets" / "samples"


def make_images(folder: Path, n: int, seed: int = 0) -> list[tuple[str, str]]:
    rng = np.random.default_rng(seed)
    originals = [Image.open(p).convert("RGB") for p in sorted(SAMPLES.iterdir())]
    rows = []
    for i in range(n):
        img = originals[i % len(originals)]
        w, h = img.size
        l, t = rng.uniform(0, .3, 2)
        box = (int(l * w), int(t * h), int((l + rng.uniform(.6, .7)) * w), int((t + rng.uniform(.6, .7)) * h))
        out = img.crop(box).rotate(float(rng.uniform(-8, 8))).resize((512, 384))
        path = folder / f"img{i:05d}.jpg"
        out.save(path, quality=int(rng.integers(60, 95)))
        rows.append((str(path), f"h{i}"))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--ocr", type=int, default=0, help="also OCR this many of the images")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "imgs"
        folder.mkdir()
        rows = make_images(folder, args.n)
        library = Library(Path(tmp) / "lib")
        t = time.perf_counter()
        index = PerceptualHashes(library, args.workers).index(rows)
        hashing = time.perf_counter() - t
        t = time.perf_counter()
        groups = clusters(index, 10)
        clustering = time.perf_counter() - t
        query = Image.open(rows[0][0])
        t = time.perf_counter()
        for _ in range(20):
            copies_of(index, query, 10)
        lookup = (time.perf_counter() - t) / 20
        t = time.perf_counter()
        PerceptualHashes(library, args.workers).index(rows)
        cached = time.perf_counter() - t
        per_k = 1000 / args.n
        print(f"{args.n} images, {args.workers} workers: hash {hashing:.2f}s ({hashing * per_k:.2f}s per 1,000, "
              f"7 pHashes each), cached re-run {cached:.2f}s, clusters at cut 10 {clustering:.3f}s "
              f"({len(groups)} clusters), copy lookup {lookup * 1000:.1f} ms")
        if args.ocr:
            from mmsearch.media.ocr import OCR

            ocr = OCR(threads=args.workers)
            t = time.perf_counter()
            ocr.load()
            load = time.perf_counter() - t
            secs = [ocr.read(Image.open(p)).seconds for p, _ in rows[: args.ocr]]
            print(f"OCR: model load {load:.2f}s, {np.mean(secs):.3f}s per 512x384 photo "
                  f"({np.mean(secs) * 1000 / 60:.1f} min per 1,000)")


if __name__ == "__main__":
    main()
