"""Image encoding throughput of the model zoo on this machine, and what the faster CPU paths cost in results.

Random weights of the real architectures (open_clip builds any config with pretrained="random"), loaded
through mmsearch's encoder, so reparameterisation (MobileCLIP) and the ONNX export path are the production
ones. Only the image tower is timed, on already preprocessed tensors: the model's share of indexing.

Retention: a small synthetic library (gradients and shapes, so vectors differ) is embedded with the fp32
torch tower and with each faster backend; each of 16 text queries (torch text tower, as at search time) and
16 image queries takes its top 10 from both, and retention is the mean overlap. Random weights make these
vectors arbitrary but the comparison fair: it measures how far the backend moves the vectors, not quality.

    OMP_NUM_THREADS=2 .venv/bin/python bench/bench_encoders.py --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run from a checkout; needs only torch, open_clip (and onnxruntime), not lancedb
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the benchmark never reaches the network

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from mmsearch.encoders.openclip import OpenCLIPEncoder  # noqa: E402

DEFAULT_MODELS = ("ViT-B-32", "MobileCLIP2-S0", "MobileCLIP-S2", "ViT-B-16-SigLIP", "ViT-L-14")
DEFAULT_BACKENDS = {"ViT-B-32": ("torch", "onnx", "onnx-int8"), "MobileCLIP2-S0": ("torch", "onnx", "onnx-int8")}
QUERIES = ["a dog", "a red car", "sunset over the sea", "a bowl of fruit", "a city street at night", "snow",
           "a portrait", "green leaves", "a blue square", "circles", "stripes", "a bright light", "darkness",
           "a crowd", "a boat", "mountains"]


def synthetic_images(n: int, seed: int = 0) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        a, b = rng.integers(0, 255, 3), rng.integers(0, 255, 3)
        ramp = np.linspace(0, 1, 256)[None, :, None]
        img = Image.fromarray((a * (1 - ramp) + b * ramp).repeat(256, 0).astype(np.uint8))
        draw = ImageDraw.Draw(img)
        for _ in range(int(rng.integers(1, 5))):
            x, y, r = (int(v) for v in rng.integers(20, 236, 3) // (1, 1, 3))
            draw.ellipse([x - r, y - r, x + r, y + r], fill=tuple(int(c) for c in rng.integers(0, 255, 3)))
        out.append(img)
    return out


def throughput(encode, batch: list, batches: int) -> float:
    encode(batch)  # warm-up: first-call allocations, oneDNN kernel choice
    started = time.perf_counter()
    for _ in range(batches):
        encode(batch)
    return batches * len(batch) / (time.perf_counter() - started)


def retention(ref: np.ndarray, got: np.ndarray, queries: np.ndarray, k: int = 10) -> float:
    top = lambda m: np.argsort(-(m @ queries.T), axis=0)[:k].T  # noqa: E731
    return float(np.mean([len(set(a) & set(b)) / k for a, b in zip(top(ref), top(got))]))


def stand_in_tokenizer(name: str) -> str | None:
    """Models whose tokenizer lives on the hub (SigLIP) get a locally built one of the same kind (the tests'
    builder): only the image tower is timed, and the text queries merely need to run."""
    import open_clip

    if not (open_clip.get_model_config(name) or {}).get("text_cfg", {}).get("hf_tokenizer_name"):
        return None
    import tempfile

    from tests import zoo_support

    return str(zoo_support.t5_tokenizer(Path(tempfile.mkdtemp(prefix="bench-tok-"))))


def run_model(name: str, backends: tuple[str, ...], batch_size: int, batches: int, images: list,
              device: str = "cpu", precision: str = "fp32", repeats: int = 1) -> list[dict]:
    """One random-weight model; every backend runs the very same weights (ONNX exports the loaded tower)."""
    from mmsearch.encoders.base import l2_normalize
    from mmsearch.encoders.onnx_backend import image_tower

    started = time.perf_counter()
    torch.manual_seed(0)
    enc = OpenCLIPEncoder(name, "random", device=device, precision=precision, offline=True,
                          tokenizer=stand_in_tokenizer(name))
    enc.load()
    load_s = time.perf_counter() - started
    tensors = [enc.preprocess_image(im) for im in images]
    rows, ref = [], None
    for backend in backends:
        started = time.perf_counter()
        if backend == "torch":
            encode = enc.encode_images
        else:
            try:
                tower = image_tower(enc, int8=backend == "onnx-int8")
            except Exception as exc:  # noqa: BLE001 - report a backend that cannot be built, go on
                rows.append({"model": name, "backend": backend, "error": str(exc)[:300]})
                print(json.dumps(rows[-1]), flush=True)
                continue
            encode = lambda batch, tower=tower: l2_normalize(tower(torch.stack(list(batch)).numpy()))  # noqa: E731
        prepare_s = time.perf_counter() - started + (load_s if backend == "torch" else 0.0)
        # Best of `repeats`: on a shared machine the fastest run is the one least disturbed by others.
        runs = [throughput(encode, tensors[:batch_size], batches) for _ in range(repeats)]
        ips = max(runs)
        vecs = encode(tensors)
        row = {"model": name, "backend": backend, "device": device, "precision": str(enc.dtype).split(".")[-1],
               "image_size": enc.image_size(), "batch": batch_size, "batches": batches,
               "images_per_s": round(ips, 2), "runs": [round(r, 2) for r in runs],
               "load_or_export_s": round(prepare_s, 1)}
        if ref is None:
            ref, text_q = vecs, enc.encode_text(QUERIES)
        else:
            row["retention_at_10_text"] = round(retention(ref, vecs, text_q), 3)
            row["retention_at_10_image"] = round(retention(ref, vecs, ref[:16]), 3)
            row["max_abs_diff_vs_torch"] = float(np.abs(ref - vecs).max())
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--batches", type=int, default=3)
    ap.add_argument("--library", type=int, default=64, help="synthetic images for the retention check")
    ap.add_argument("--no-onnx", action="store_true")
    ap.add_argument("--repeats", type=int, default=1, help="timed runs per backend; the best is reported")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precision", default="fp32")
    ap.add_argument("--out", type=Path, help="write the rows as JSON here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    images = synthetic_images(max(args.library, args.batch))
    rows = []
    for name in args.models:
        backends = ("torch",) if args.no_onnx or args.device != "cpu" else DEFAULT_BACKENDS.get(name, ("torch",))
        try:
            rows += run_model(name, backends, args.batch, args.batches, images[: args.library], args.device,
                              args.precision, args.repeats)
        except Exception as exc:  # noqa: BLE001 - one model that cannot run does not stop the others
            rows.append({"model": name, "backend": "torch", "error": str(exc)[:300]})
            print(json.dumps(rows[-1]), flush=True)
    print(f"\n{'model':<18} {'backend':<10} {'px':>4} {'images/s':>9} {'retention@10 text/image':>24}  "
          f"(device {args.device}, {args.threads} threads, best of {args.repeats})")
    for r in rows:
        if "error" in r:
            print(f"{r['model']:<18} {r['backend']:<10} failed: {r['error'][:80]}")
            continue
        ret = f"{r['retention_at_10_text']:.2f} / {r['retention_at_10_image']:.2f}" if "retention_at_10_text" in r else "(reference)"
        print(f"{r['model']:<18} {r['backend']:<10} {r['image_size']:>4} {r['images_per_s']:>9.2f} {ret:>24}")
    if args.out:
        load = os.getloadavg()
        args.out.write_text(json.dumps({"threads": args.threads, "torch": torch.__version__, "loadavg": load,
                                        "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
