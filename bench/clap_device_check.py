"""CLAP on an accelerator: the encoder's CUDA path agrees with the CPU, and where the time goes there.

    python bench/clap_device_check.py [--device cuda] [--windows 256] [--threads 16]

Builds the real clap-htsat-unfused architecture with random weights in a temporary folder, loads it
through mmsearch's ClapEncoder (the production loader) on the CPU and on the device, and reports:
the largest difference between their audio and text vectors, and against transformers' own feature
extractor; windows/s of encode_audio (batched log-mel + model) on the device at several batch sizes; and,
for comparison, windows/s of transformers' ClapFeatureExtractor on N CPU threads. Needs torch and
transformers, not LanceDB: it runs on a bare GPU machine.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def build(folder: Path) -> Path:
    import torch
    from transformers import ClapConfig, ClapFeatureExtractor, ClapModel, ClapProcessor

    from tests.audio_support import byte_level_tokenizer

    torch.manual_seed(0)
    ClapModel(ClapConfig()).save_pretrained(folder)
    ClapProcessor(feature_extractor=ClapFeatureExtractor(), tokenizer=byte_level_tokenizer()).save_pretrained(folder)
    return folder


def rate(fn, n: int, repeats: int = 3) -> float:
    fn()  # warm-up
    t = time.perf_counter()
    for _ in range(repeats):
        fn()
    return round(n * repeats / (time.perf_counter() - t), 1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--windows", type=int, default=256)
    ap.add_argument("--threads", type=int, default=16)
    args = ap.parse_args()
    import torch

    from mmsearch.encoders.clap import ClapEncoder

    name = torch.cuda.get_device_name() if args.device == "cuda" else ""
    out: dict = {"torch": torch.__version__, "device_name": name}
    with tempfile.TemporaryDirectory() as tmp:
        folder = build(Path(tmp) / "clap")
        cpu, dev = ClapEncoder(str(folder), device="cpu", offline=True), ClapEncoder(str(folder), device=args.device,
                                                                                       offline=True)
        rng = np.random.default_rng(0)
        windows = [rng.standard_normal(480_000).astype(np.float32) * 0.1 for _ in range(args.windows)]
        batch = [cpu.preprocess_audio(w) for w in windows[:8]]
        texts = ["a dog barking", "rain on a tin roof", "an upbeat synth loop"]
        on_cpu = cpu.encode_audio(batch)
        out["max_abs_diff_audio_cpu_vs_device"] = float(np.abs(on_cpu - dev.encode_audio(batch)).max())
        out["max_abs_diff_text_cpu_vs_device"] = float(np.abs(cpu.encode_text(texts) - dev.encode_text(texts)).max())
        # transformers' own extractor (numpy, frame by frame) as the reference for the batched torch log-mel
        fe = cpu._features
        ref = fe(windows[:8], sampling_rate=48_000, truncation="rand_trunc", padding="repeatpad", return_tensors="pt")
        with torch.inference_mode():
            expected = cpu._model.get_audio_features(**ref).pooler_output.numpy()
        out["max_abs_diff_vs_feature_extractor"] = float(np.abs(expected - dev.encode_audio(batch)).max())
        with ThreadPoolExecutor(args.threads) as pool:
            out[f"feature_extractor_windows_per_s_{args.threads}_threads"] = rate(
                lambda: list(pool.map(lambda w: fe(w, sampling_rate=48_000, truncation="rand_trunc",
                                                   return_tensors="pt"), windows[:64])), 64, repeats=1)
        all_batch = [dev.preprocess_audio(w) for w in windows[:64]]
        for size in (8, 32, 64):  # log-mel and model together, as the indexer calls them
            out[f"encode_audio_windows_per_s_batch_{size}"] = rate(lambda b=size: dev.encode_audio(all_batch[:b]), size)
        if args.device == "cuda":
            out["peak_gpu_memory_mib"] = round(torch.cuda.max_memory_allocated() / 2**20)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
