"""Text-query encoding: padded vs real-length text tower, ONNX Runtime, batching, a cold torch-free start.

    .venv/bin/python bench/bench_text.py                 # ViT-B-32 architecture, random weights, ~3 min
    .venv/bin/python bench/bench_text.py --threads 2 --queries 60 --out bench/results

Sections (all on the same encoder, ViT-B-32 with random weights: the compute of released weights):
1. One query of up to 16 tokens, text -> normalised vector, interleaved: open_clip's padded encode_text
   (77 positions), mmsearch's torch encoder (the batch's real length), the exported ONNX text tower
   (real length) and a cache hit through TextFront. Max abs difference of each against the padded one.
2. 16 concurrent callers, distinct texts: the plain encoder vs TextFront's dynamic batching (queries/s).
3. A cold process without torch: python -c "import; load the export; encode one query", wall seconds,
   against the same cold start with the torch encoder.
Writes text.json (every number) and text.md (the summary) to --out (--name changes "text").
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from common import ROOT, CpuShare, interleaved, machine

import numpy as np  # noqa: E402
import torch  # noqa: E402

from mmsearch.encoders.onnx_text import OnnxTextEncoder  # noqa: E402
from mmsearch.encoders.onnx_text_export import export_text_query_path  # noqa: E402
from mmsearch.encoders.openclip import OpenCLIPEncoder  # noqa: E402
from mmsearch.query.textcache import TextFront  # noqa: E402

WORDS = ("a photo of the red dog cat car beach night city river mountain snow old new small big two green "
         "astronaut riding horse bowl ramen sunset over sea bridge").split()
MAX_TOKENS = 16  # including <start_of_text> and <end_of_text>


def queries(enc: OpenCLIPEncoder, n: int, seed: int = 0) -> list[str]:
    """Distinct queries of 3..16 tokens (counted with the model's own tokenizer)."""
    rng = np.random.default_rng(seed)
    out: list[str] = []
    while len(out) < n:
        text = " ".join(rng.choice(WORDS, size=int(rng.integers(1, MAX_TOKENS - 1))))
        length = int(enc._tokenizer([text])[0].argmax()) + 1
        if length <= MAX_TOKENS and text not in out:
            out.append(text)
    return out


def padded(enc: OpenCLIPEncoder, texts: list[str]) -> np.ndarray:
    """open_clip's own path: tokens padded to 77, the full text tower."""
    with torch.inference_mode():
        feats = enc.torch_model.encode_text(enc._tokenizer(texts))
    return torch.nn.functional.normalize(feats.float(), dim=-1).numpy()


def single_query(enc: OpenCLIPEncoder, onnx: OnnxTextEncoder, texts: list[str]) -> dict:
    front = TextFront(enc)
    front.encode_text(texts)  # every query cached: the fourth row is a pure cache hit
    fns = {
        "torch, padded to 77 (before)": lambda i: padded(enc, [texts[i]]),
        "torch, real length (after)": lambda i: enc.encode_text([texts[i]]),
        "onnx runtime, real length": lambda i: onnx.encode_text([texts[i]]),
        "TextFront cache hit": lambda i: front.encode_text([texts[i]]),
    }
    share = CpuShare()
    stats = interleaved(fns, len(texts), warmup=3)
    ref = padded(enc, texts)
    diffs = {"torch, real length (after)": float(np.abs(enc.encode_text(texts) - ref).max()),
             "onnx runtime, real length": float(np.abs(onnx.encode_text(texts) - ref).max())}
    others = np.linalg.norm(ref[:, None] - ref[None], axis=-1)[~np.eye(len(texts), dtype=bool)]
    lengths = [int(r.argmax()) + 1 for r in enc._tokenizer(texts).numpy()]
    return {"latency_ms": stats, "max_abs_diff_vs_padded": diffs, "min_distance_between_queries": float(others.min()),
            "tokens": {"min": min(lengths), "median": statistics.median(lengths), "max": max(lengths)},
            "cpu_share_of_others": share.others()}


def concurrent(enc: OpenCLIPEncoder, texts: list[str], callers: int = 16) -> dict:
    out = {}
    for name, make in (("plain encoder", lambda: enc), ("TextFront (batched)", lambda: TextFront(enc))):
        target = make()
        start = threading.Barrier(callers)

        def one(i: int, target=target, start=start) -> float:
            start.wait()
            t = time.perf_counter()
            for text in texts[i::callers]:
                target.encode_text([text])
            return time.perf_counter() - t

        t0 = time.perf_counter()
        with ThreadPoolExecutor(callers) as pool:
            list(pool.map(one, range(callers)))
        wall = time.perf_counter() - t0
        out[name] = {"queries": len(texts), "seconds": round(wall, 3), "queries_per_s": round(len(texts) / wall, 1)}
        if isinstance(target, TextFront):
            out[name]["encode_calls"] = target.batcher.calls
    return out


COLD_ONNX = """
import time; t0 = time.perf_counter()
import sys
from mmsearch.encoders.onnx_text import OnnxTextEncoder
t1 = time.perf_counter(); enc = OnnxTextEncoder(sys.argv[1]); enc.load(); t2 = time.perf_counter()
enc.encode_text(["a photo of a dog on the beach"]); t3 = time.perf_counter()
assert "torch" not in sys.modules and "open_clip" not in sys.modules
print(f"{t1 - t0:.3f} {t2 - t1:.3f} {t3 - t2:.3f}")
"""
COLD_TORCH = """
import time; t0 = time.perf_counter()
import sys
from mmsearch.encoders.openclip import OpenCLIPEncoder
t1 = time.perf_counter(); enc = OpenCLIPEncoder("ViT-B-32", "random", models_dir=sys.argv[1], device="cpu",
                                                 offline=True); enc.load(); t2 = time.perf_counter()
enc.encode_text(["a photo of a dog on the beach"]); t3 = time.perf_counter()
print(f"{t1 - t0:.3f} {t2 - t1:.3f} {t3 - t2:.3f}")
"""


def cold(manifest: Path, models_dir: Path, repeats: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    out = {}
    for name, script, arg in (("onnx, no torch", COLD_ONNX, str(manifest)),
                              ("torch encoder", COLD_TORCH, str(models_dir))):
        runs = []
        for _ in range(repeats):
            t = time.perf_counter()
            done = subprocess.run([sys.executable, "-c", script, arg], capture_output=True, text=True, env=env,
                                  check=True)
            wall = time.perf_counter() - t
            imp, load, enc = (float(x) for x in done.stdout.split())
            runs.append({"wall_s": round(wall, 3), "import_s": imp, "load_s": load, "encode_s": enc})
        out[name] = {"runs": runs, "wall_s_median": statistics.median(r["wall_s"] for r in runs)}
    return out


def report(result: dict) -> str:
    m, s = result["machine"], result["single"]
    lines = [
        "# Text-query encoding (ViT-B-32 architecture, random weights)", "",
        f"`{result['command']}` on {m['cpu']}, {m['cores_usable']} usable cores, torch threads {result['threads']}, "
        f"onnx threads {result['threads']}; load average at start {', '.join(f'{x:.2f}' for x in m['loadavg_start'])}; "
        f"other processes used {s['cpu_share_of_others']:.0%} of the CPUs during section 1. "
        f"mmsearch {m['mmsearch_source']}.", "",
        f"## 1. One query ({len(result['queries'])} distinct queries, {s['tokens']['min']}-{s['tokens']['max']} "
        f"tokens, median {s['tokens']['median']}; interleaved)", "",
        "| path | p50 ms | p95 ms | max abs diff vs padded |", "|---|---:|---:|---:|",
    ]
    for name, st in s["latency_ms"].items():
        diff = s["max_abs_diff_vs_padded"].get(name)
        lines.append(f"| {name} | {st['p50']:.1f} | {st['p95']:.1f} | {'' if diff is None else f'{diff:.1e}'} |")
    lines += ["", f"Different queries are at least {s['min_distance_between_queries']:.2f} apart (L2), so the "
                  f"differences above are float noise.", "",
              f"## 2. {result['callers']} concurrent callers, distinct texts", "",
              "| path | queries | seconds | queries/s | encode calls |", "|---|---:|---:|---:|---:|"]
    for name, c in result["concurrent"].items():
        calls = c.get("encode_calls", "")
        lines.append(f"| {name} | {c['queries']} | {c['seconds']} | {c['queries_per_s']} | {calls} |")
    lines += ["", "## 3. Cold process: import + load + encode one query", "",
              "| path | wall s (median) | import s | load s | encode s |", "|---|---:|---:|---:|---:|"]
    for name, c in result["cold"].items():
        r = sorted(c["runs"], key=lambda r: r["wall_s"])[len(c["runs"]) // 2]
        lines.append(f"| {name} | {c['wall_s_median']:.2f} | {r['import_s']:.2f} | {r['load_s']:.2f} | "
                     f"{r['encode_s']:.3f} |")
    lines += ["", "The onnx process asserts that neither torch nor open_clip was imported. The export itself "
                  f"(once per weights, at index time) took {result['export_s']:.0f} s here.", ""]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--queries", type=int, default=60)
    ap.add_argument("--callers", type=int, default=16)
    ap.add_argument("--cold-repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    ap.add_argument("--name", default="text", help="result file names: NAME.json, NAME.md")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="bench-text-"))
    enc = OpenCLIPEncoder("ViT-B-32", "random", models_dir=work / "models", device="cpu", offline=True)
    enc.load()
    t = time.perf_counter()
    manifest = export_text_query_path(enc, work / "models" / "onnx")
    export_s = time.perf_counter() - t
    onnx = OnnxTextEncoder(manifest, threads=args.threads)
    texts = queries(enc, args.queries)
    result = {"command": "python bench/bench_text.py " + " ".join(sys.argv[1:]), "machine": machine(),
              "threads": args.threads, "queries": texts, "callers": args.callers, "export_s": export_s}
    result["single"] = single_query(enc, onnx, texts)
    result["concurrent"] = concurrent(enc, queries(enc, 4 * args.callers, seed=1), args.callers)
    result["cold"] = cold(manifest, work / "models", args.cold_repeats)
    result["loadavg_end"] = os.getloadavg()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(json.dumps(result, indent=1))
    text = report(result)
    (args.out / f"{args.name}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
