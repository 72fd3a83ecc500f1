"""Memory of one indexing process along the run, over mixed large media (issue 14, part 4).

Mixed files made from skimage.data photographs: 12 MP JPEGs (4000x3000), large RGBA PNGs (3000x2000 with a
soft alpha), animated GIFs (800x600, 6 frames), in the ratio 6:3:1. A few base images per kind are drawn once; every file is a base
image with 16 distinct bytes appended after its end marker (decoders ignore them), so every file has its own
content hash (the indexer would otherwise reuse vectors instead of decoding) and decodes like its base.

Each run indexes a fresh library in a fresh subprocess that samples its own RSS (/proc/self/status,
every 0.25 s, with the number of files done) and, with --tracemalloc, takes Python heap snapshots along
the run and reports the top growth by line between the first and the last.

    .venv/bin/python bench/ingest_memory.py --model ViT-B-32 --files 100,2000
    .venv/bin/python bench/ingest_memory.py --model tiny --files 2000 --tracemalloc   # the encoder is not the subject
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from common import ROOT, CpuShare, machine, model_under_test

KINDS = (("jpg", 6), ("png", 3), ("gif", 1))
BASES = 4  # base images per kind


PICTURES = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "retina", "immunohistochemistry")


def _picture(index: int, size: tuple[int, int]):
    """A real photograph from skimage.data (bundled with scikit-image: nothing is downloaded), resized."""
    import skimage.data
    from PIL import Image

    name = PICTURES[index % len(PICTURES)]
    return Image.fromarray(getattr(skimage.data, name)()[..., :3]).convert("RGB").resize(size, Image.BICUBIC)


def _base(kind: str, seed: int) -> bytes:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    out = io.BytesIO()
    if kind == "jpg":  # 12 MP, like a phone photo
        _picture(seed, (4000, 3000)).save(out, "JPEG", quality=85)
    elif kind == "png":  # a large RGBA PNG with a soft alpha
        rgba = _picture(seed + 1, (3000, 2000)).convert("RGBA")
        yy, xx = np.mgrid[0:2000, 0:3000]
        alpha = (255 * (0.5 + 0.5 * np.sin(xx / (200 + 50 * rng.random())) * np.cos(yy / 300))).astype(np.uint8)
        rgba.putalpha(Image.fromarray(alpha))
        rgba.save(out, "PNG", compress_level=1)
    else:  # an animated GIF: 6 frames, each a different picture
        frames = [_picture(seed + f, (800, 600)).convert("P", palette=Image.ADAPTIVE) for f in range(6)]
        frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return out.getvalue()


def make_mixed(folder: Path, n: int) -> dict:
    """n files under folder (1000 per subfolder), each a hard link to one of the few base files.

    50,000 distinct 12 MP JPEGs and RGBA PNGs would take ~200 GB of a shared disk; hard links take none. The
    child makes each file's content hash its own (see `_hash_per_path`), so every file is decoded, preprocessed
    and embedded as a distinct file would be. Generates only what is missing.
    """
    pool = folder.parent / "bases"
    pool.mkdir(parents=True, exist_ok=True)
    bases = {}
    for kind, _ in KINDS:
        for b in range(BASES):
            f = pool / f"{kind}_{b}.{kind}"
            if not f.exists():
                f.write_bytes(_base(kind, b))
            bases[(kind, b)] = f
    cycle = [k for k, w in KINDS for _ in range(w)]
    sizes = 0
    for i in range(n):
        kind = cycle[i % len(cycle)]
        base = bases[(kind, (i // len(cycle)) % BASES)]
        path = folder / f"d{i // 1000:03d}/m_{i:06d}.{kind}"
        sizes += base.stat().st_size
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            os.link(base, path)
    return {"files": n, "bytes": sizes, "mix": {k: w for k, w in KINDS},
            "base_bytes": {f.name: f.stat().st_size for f in bases.values()}}


def _hash_per_path() -> None:
    """Each hard link counts as a distinct file: its content hash gets its path mixed in, after the real
    blake2b of its bytes, so the indexer never reuses a twin's vector. Reading, decoding, preprocessing,
    embedding and committing run unchanged."""
    import hashlib

    from mmsearch.ingest.pipelines import ImagePipeline

    real = ImagePipeline.prepare

    def prepare(self, entry, known):  # noqa: ANN001, ANN202
        item = real(self, entry, set())  # a twin's hash never counts as known
        item.hash = hashlib.blake2b(f"{item.hash}:{entry.path}".encode(), digest_size=16).hexdigest()
        return item

    ImagePipeline.prepare = prepare


# -- the measured child ---------------------------------------------------------------------------
def _rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def child(model: str, work: Path, folder: Path, data_dir: Path, trace: bool, stream: Path | None = None) -> None:
    from mmsearch.ingest.indexer import Progress
    from mmsearch.service import MMSearch

    _hash_per_path()
    if trace:
        import tracemalloc

        tracemalloc.start(12)
    mut = model_under_test(model, work)
    encoder = mut.encoder()
    encoder.load()
    start = time.perf_counter()
    samples: list[tuple[float, int, float]] = []
    done = [0]
    snaps = []
    stop = threading.Event()

    # Each sample is also written out as it is taken: a run stopped before its end still leaves its curve.
    out_stream = stream.open("w", buffering=1) if stream else None

    def sample() -> None:
        while not stop.wait(0.25):
            samples.append((round(time.perf_counter() - start, 2), done[0], round(_rss_mb(), 1)))
            if out_stream:
                out_stream.write(json.dumps(samples[-1]) + "\n")

    def progress(p: Progress) -> None:
        done[0] = p.done
        if trace and p.total and p.done in {p.total // 10, p.total // 2, p.total - 1}:
            import tracemalloc

            snaps.append((p.done, tracemalloc.take_snapshot()))

    after_load = _rss_mb()
    if out_stream:
        out_stream.write(json.dumps({"after_load_mb": round(after_load, 1), "model": model}) + "\n")
    t = threading.Thread(target=sample, daemon=True)
    t.start()
    settings = mut.with_data_dir(data_dir).model_copy(update={"audio": False, "text_export": False})
    report = MMSearch(settings, encoder=encoder).index([folder], on_progress=progress)
    stop.set()
    t.join()
    out = {"after_load_mb": round(after_load, 1), "embedded": report.embedded, "skipped": len(report.skipped),
           "seconds": round(time.perf_counter() - start, 1), "samples": samples,
           "peak_mb": max(s[2] for s in samples) if samples else after_load,
           "hwm_mb": _status_mb("VmHWM")}
    if trace and len(snaps) >= 2:
        first, last = snaps[0][1], snaps[-1][1]
        out["tracemalloc"] = {
            "between_done": [snaps[0][0], snaps[-1][0]],
            "traced_mb": [round(sum(s.size for s in snap.statistics("filename")) / 2**20, 1) for _, snap in snaps],
            "top_growth": [str(s) for s in last.compare_to(first, "lineno")[:12]],
        }
    print("RESULT " + json.dumps(out), flush=True)


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def run_one(model: str, work: Path, folder: Path, trace: bool, env: dict[str, str]) -> dict:
    data_dir = work / "library"
    shutil.rmtree(data_dir, ignore_errors=True)
    cmd = [sys.executable, __file__, "--model", model, "--work", str(work), "--child", str(folder), str(data_dir),
           "--stream", str(work / f"samples-{folder.name}.jsonl")]
    if trace:
        cmd.append("--tracemalloc")
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **env})
    shutil.rmtree(data_dir, ignore_errors=True)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"child failed ({proc.returncode}): {proc.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="tiny")
    ap.add_argument("--files", default="100,2000")
    ap.add_argument("--work", type=Path, default=Path("/tmp/mmsearch-mem"))
    ap.add_argument("--tracemalloc", action="store_true")
    ap.add_argument("--env", action="append", default=[], help="NAME=VALUE for the child (MALLOC_ARENA_MAX=2)")
    ap.add_argument("--label", default="")
    ap.add_argument("--out", type=Path, help="append the runs to this JSON file")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    ap.add_argument("--stream", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--partial", type=Path, help="a run stopped before its end: its samples-*.jsonl, appended to "
                    "--out as an unfinished run")
    ap.add_argument("--clean", action="store_true", help="remove the generated files afterwards")
    args = ap.parse_args()
    if args.child:
        child(args.model, args.work, Path(args.child[0]), Path(args.child[1]), args.tracemalloc, args.stream)
        return
    if args.partial:
        _append(args.out, [partial_run(args.partial, int(args.files), args.label)])
        return
    env = dict(e.split("=", 1) for e in args.env)
    runs = []
    for n in [int(x) for x in args.files.split(",")]:
        folder = args.work / f"mixed-{n}"
        t = time.perf_counter()
        made = make_mixed(folder, n)
        share = CpuShare()
        res = run_one(args.model, args.work, folder, args.tracemalloc, env)
        res.update(model=args.model, label=args.label, env=env, generate_s=round(time.perf_counter() - t, 1),
                   others_cpu_share=share.others(), **made)
        runs.append(res)
        print(json.dumps({k: v for k, v in res.items() if k != "samples"}), flush=True)
        if args.clean:
            shutil.rmtree(folder, ignore_errors=True)
    if args.out:
        _append(args.out, runs)


def _append(out: Path, runs: list[dict]) -> None:
    old = json.loads(out.read_text()) if out.exists() else {"machine": machine(), "runs": []}
    old["runs"].extend(runs)
    out.write_text(json.dumps(old, indent=1))


def partial_run(stream: Path, files: int, label: str) -> dict:
    """The run record of a child stopped before its end, from the samples it streamed."""
    lines = [json.loads(line) for line in stream.read_text().splitlines() if line.strip()]
    head, samples = lines[0], [tuple(s) for s in lines[1:]]
    return {"after_load_mb": head["after_load_mb"], "model": head["model"], "label": label, "files": files,
            "finished": False, "embedded": samples[-1][1], "seconds": samples[-1][0], "samples": samples,
            "peak_mb": max(s[2] for s in samples), "hwm_mb": max(s[2] for s in samples), "env": {},
            "others_cpu_share": None}


if __name__ == "__main__":
    main()
