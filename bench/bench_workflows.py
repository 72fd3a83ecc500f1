"""Workflow timings on phone-camera-sized photos: perceptual hashing, near-duplicate clustering, copy lookup; OCR.

    .venv/bin/python bench/bench_workflows.py --n 60 [--ocr 5] [--megapixels 12]

Photos: the sample photos (scikit-image's `data` photos in assets/samples), each cut, turned a little,
upscaled to 4000x3000 (12 MP, a phone camera's size) with a fine sensor-like grain so the JPEG is the size of
a real photo of that size (~3-5 MB at quality 85-92), and saved as JPEG. Generated once into
bench/results/tmp/workflows/ and kept. Every timing starts from the file on disk, through the code the
commands use: hashing through `PerceptualHashes.index` (read, hash, decode with JPEG draft, 7 pHashes), a copy
lookup through `load_image` + `copies_of` (what `mmsearch moderate copies FILE` does per query image), OCR
through `decode_image(read_file(...))` + `OCR.read` (what `OcrPass` does per image). Writes
bench/results/workflows.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from common import ROOT, CpuShare, machine  # also puts the checkout on sys.path

from mmsearch.ingest.pipelines import read_file
from mmsearch.media.images import decode_image
from mmsearch.store.library import Library
from mmsearch.workflows.dupes import HashIndex, PerceptualHashes, clusters, copies_of, load_image

SAMPLES = ROOT / "assets" / "samples"
PHOTOS = [p for p in sorted(SAMPLES.iterdir()) if p.suffix == ".jpg"]


def _make(job: tuple[str, int, int]) -> None:
    path, i, megapixels = job
    rng = np.random.default_rng(i)
    img = Image.open(PHOTOS[i % len(PHOTOS)]).convert("RGB")
    w, h = img.size
    left, top = rng.uniform(0, .3, 2)
    box = (int(left * w), int(top * h), int((left + rng.uniform(.6, .7)) * w), int((top + rng.uniform(.6, .7)) * h))
    width = int(round((megapixels * 1e6 * 4 / 3) ** 0.5))
    size = (width, width * 3 // 4)
    out = img.crop(box).rotate(float(rng.uniform(-8, 8))).resize(size, Image.BICUBIC)
    grain = rng.integers(-10, 11, (size[1], size[0], 1), dtype=np.int16)  # sensor noise: real photo file sizes
    out = Image.fromarray((np.asarray(out, np.int16) + grain).clip(0, 255).astype(np.uint8))
    out.save(path + ".part", "JPEG", quality=int(rng.integers(85, 93)))
    os.replace(path + ".part", path)


def make_images(folder: Path, n: int, megapixels: int, processes: int = 2) -> list[tuple[str, str]]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"img{i:05d}.jpg" for i in range(n)]
    missing = [(str(p), i, megapixels) for i, p in enumerate(paths) if not p.exists()]
    if missing:
        with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn")) as pool:
            list(pool.map(_make, missing))
    return [(str(p), f"h{i}") for i, p in enumerate(paths)]


def tiled(index: HashIndex, n: int, seed: int = 0) -> HashIndex:
    """n rows from the measured hashes, each copy with a few bits flipped (clustering cost is hash-only)."""
    rng = np.random.default_rng(seed)
    reps = -(-n // len(index.paths))
    hashes = np.concatenate([index.hashes] * reps)[:n].copy()
    flips = rng.integers(0, 64, hashes.shape)
    hashes ^= (np.uint64(1) << flips.astype(np.uint64)) * (rng.random(hashes.shape) < 0.5)
    return HashIndex([f"copy{i}" for i in range(n)], hashes)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=60, help="photos to hash")
    ap.add_argument("--megapixels", type=int, default=12)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--lookups", type=int, default=5, help="copy lookups, each from a file")
    ap.add_argument("--ocr", type=int, default=0, help="also OCR this many of the photos")
    ap.add_argument("--work", type=Path, default=ROOT / "bench" / "results" / "tmp" / "workflows")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = ap.parse_args()
    result: dict = {"machine": machine(), "command": " ".join(["bench/bench_workflows.py", *sys.argv[1:]])}
    rows = make_images(args.work / f"photos-{args.megapixels}mp", args.n, args.megapixels)
    sizes = [os.path.getsize(p) for p, _ in rows]
    with Image.open(rows[0][0]) as first:
        result["photos"] = {"n": args.n, "size_px": list(first.size), "mean_mb": round(statistics.fmean(sizes) / 2**20, 2)}
    lib_dir = args.work / "lib"
    if lib_dir.exists():
        import shutil

        shutil.rmtree(lib_dir)
    library = Library(lib_dir, create=True)
    share = CpuShare()
    t = time.perf_counter()
    index = PerceptualHashes(library, args.workers).index(rows)
    hashing = time.perf_counter() - t
    if index.skipped or len(index.paths) != args.n:
        raise RuntimeError(f"hashing went wrong: {index.skipped[:3]}")
    t = time.perf_counter()
    PerceptualHashes(library, args.workers).index(rows)
    cached = time.perf_counter() - t
    t = time.perf_counter()
    groups = clusters(index, 10)
    clustering_n = time.perf_counter() - t
    big = tiled(index, 1000)
    t = time.perf_counter()
    clusters(big, 10)
    clustering_1000 = time.perf_counter() - t
    lookups = []
    for i in range(args.lookups):
        path = rows[i % args.n][0]
        t = time.perf_counter()
        found = copies_of(index, load_image(path), 10)
        lookups.append(time.perf_counter() - t)
        if path not in [c.path for c in found]:
            raise RuntimeError(f"copy lookup of {path} did not find the file itself")
    result["dupes"] = {
        "workers": args.workers, "hash_s": round(hashing, 2), "hash_s_per_1000": round(hashing * 1000 / args.n, 1),
        "hash_ms_per_photo": round(hashing / args.n * 1000, 1), "cached_rerun_s": round(cached, 3),
        "clusters_at_cut_10": len(groups), "cluster_s_n": round(clustering_n, 4), "cluster_s_1000": round(clustering_1000, 3),
        "copy_lookup_ms_from_file": round(statistics.median(lookups) * 1000, 1),
        "others_cpu_share": share.others(),
    }
    if args.ocr:
        from mmsearch.media.ocr import OCR

        share = CpuShare()
        ocr = OCR(threads=args.workers)
        t = time.perf_counter()
        ocr.load()
        load = time.perf_counter() - t
        total, inside = [], []
        for path, _ in rows[: args.ocr]:
            t = time.perf_counter()
            read = ocr.read(decode_image(read_file(path), path, 178_956_970).image)  # as OcrPass does
            total.append(time.perf_counter() - t)
            inside.append(read.seconds)
        result["ocr"] = {"n": args.ocr, "load_s": round(load, 2), "s_per_photo_from_file": round(statistics.fmean(total), 2),
                         "s_per_photo_in_ocr_read": round(statistics.fmean(inside), 2),
                         "min_per_1000": round(statistics.fmean(total) * 1000 / 60, 1), "others_cpu_share": share.others()}
    result["machine"]["loadavg_end"] = os.getloadavg()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "workflows.json").write_text(json.dumps(result, indent=2) + "\n")
    text = summary(result)
    (args.out / "workflows.md").write_text(text + "\n")
    print(text)


def summary(r: dict) -> str:
    m, p, d = r["machine"], r["photos"], r["dupes"]
    load = lambda key: "/".join(f"{x:.2f}" for x in m[key])  # noqa: E731
    lines = [f"# Workflows on {p['size_px'][0]}x{p['size_px'][1]} JPEGs ({p['mean_mb']} MB each)", "",
             f"{m['cpu']}, {m['cores_usable']} usable cores, mmsearch {m['mmsearch_source']}; load average "
             f"{load('loadavg_start')} at start, {load('loadavg_end')} at end. Command: `.venv/bin/python {r['command']}`.", "",
             "**Taken under load**: the 2 cores are shared with other sessions (CPU share of others below), so "
             "treat these as upper bounds on a quiet machine. Every timing starts from the file.", "",
             "| measure | value |", "|---|---|",
             f"| perceptual hashes ({p['n']} photos, {d['workers']} workers: read + draft decode + 7 pHashes) | "
             f"{d['hash_s']} s = **{d['hash_s_per_1000']} s per 1,000** ({d['hash_ms_per_photo']} ms per photo) |",
             f"| re-run with the hashes cached | {d['cached_rerun_s']} s |",
             f"| clustering at cut 10: {p['n']} photos / 1,000 hashes | {d['cluster_s_n']} s / **{d['cluster_s_1000']} s** |",
             f"| one copy lookup from a file (full decode + 7 pHashes + distances) | **{d['copy_lookup_ms_from_file']} ms** |",
             f"| CPU share used by other processes meanwhile | {d['others_cpu_share']} |"]
    if "ocr" in r:
        o = r["ocr"]
        lines += [f"| OCR from a file ({o['n']} photos: decode + scale to 1600 px + RapidOCR) | **{o['s_per_photo_from_file']} s "
                  f"per photo** ({o['s_per_photo_in_ocr_read']} s in OCR.read; {o['min_per_1000']} min per 1,000) |",
                  f"| OCR model load | {o['load_s']} s |", f"| CPU share used by others during OCR | {o['others_cpu_share']} |"]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
