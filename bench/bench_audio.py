"""Audio indexing on the real CLAP architecture (laion/clap-htsat-unfused's config, random weights).

    .venv/bin/python bench/bench_audio.py                         # speed (6 min of sounds) + RSS (a 1 h file)
    .venv/bin/python bench/bench_audio.py --sections speed --minutes 3
    .venv/bin/python bench/bench_audio.py --device cuda

Reports seconds of audio indexed per wall second (the whole MMSearch.index() pipeline: walk, probe, hash,
streamed decode + resample, log-mel features in worker threads, model, pooling, LanceDB commits), the model
alone for comparison, and the peak resident memory of a fresh process indexing one hour-long recording.
Random weights cost the same compute as released ones; nothing is downloaded. Writes
bench/results/audio_<device>.json and .md; scratch files go to bench/results/tmp/audio/ (kept, so a second
run skips generating them).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import ROOT, CpuShare, Stopwatch, machine, proc_status_mb, timed

from mmsearch.service import MMSearch, audio_encoder_from_settings, encoder_from_settings
from mmsearch.settings import Settings
from mmsearch.store.table import SpaceTable

RATE = 44_100  # what most sound libraries hold; CLAP resamples to 48 kHz


def clap_folder(work: Path) -> Path:
    """ClapConfig() is laion/clap-htsat-unfused's architecture: HTS-AT audio tower, RoBERTa-base text tower."""
    folder = work / "models" / "clap-htsat-unfused-random"
    if (folder / "model.safetensors").is_file():
        return folder
    import torch
    from transformers import ClapConfig, ClapFeatureExtractor, ClapModel, ClapProcessor

    sys.path.insert(0, str(ROOT))
    from tests.audio_support import byte_level_tokenizer  # text is not used when indexing sounds

    torch.manual_seed(0)
    ClapModel(ClapConfig()).save_pretrained(folder)
    ClapProcessor(feature_extractor=ClapFeatureExtractor(), tokenizer=byte_level_tokenizer()).save_pretrained(folder)
    return folder


def settings_for(work: Path, device: str, data_dir: Path) -> Settings:
    sys.path.insert(0, str(ROOT))
    from tests.conftest import make_tiny_model_dir  # the image side is not measured here

    clip = work / "models" / "tiny-clip"
    if not (clip / "open_clip_model.safetensors").is_file():
        make_tiny_model_dir(clip)
    return Settings(data_dir=data_dir, models_dir=work / "models", model=str(clip), pretrained="", device=device,
                    offline=True, audio_model=str(clap_folder(work)))


def _signal(seconds: float, seed: int) -> np.ndarray:
    """Stereo float32: a few drifting partials over coloured noise, different for every seed."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    tone = sum(0.1 * np.sin(2 * np.pi * rng.uniform(80, 4000) * t * (1 + 0.01 * np.sin(t))) for _ in range(3))
    noise = np.convolve(rng.standard_normal(len(t)), np.ones(8) / 8, mode="same") * 0.05
    mono = (tone + noise).astype(np.float32)
    return np.stack([mono, np.roll(mono, 100)], axis=1)


def sound_library(work: Path, minutes: float) -> Path:
    """Sound effects of 2-30 s and a few 2-minute tracks, in WAV, FLAC, OGG and MP3."""
    import soundfile as sf

    folder = work / f"sounds-{minutes:g}min"
    if folder.is_dir():
        return folder
    tmp = folder.with_suffix(".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    rng = np.random.default_rng(0)
    kinds = [("wav", None), ("flac", None), ("ogg", "VORBIS"), ("mp3", "MPEG_LAYER_III")]
    total, n = 0.0, 0
    while total < minutes * 60:
        seconds = 120.0 if n % 10 == 9 else float(rng.uniform(2, 30))
        ext, subtype = kinds[n % len(kinds)]
        sf.write(tmp / f"sound{n:03d}.{ext}", _signal(seconds, n), RATE, subtype=subtype)
        total, n = total + seconds, n + 1
    tmp.rename(folder)
    return folder


def long_recording(work: Path, minutes: int) -> Path:
    """One long 44.1 kHz stereo 16-bit WAV, written a minute at a time."""
    import soundfile as sf

    path = work / f"long-{minutes}min.wav"
    if not path.is_file():
        with sf.SoundFile(path.with_suffix(".partial"), "w", RATE, 2, subtype="PCM_16", format="WAV") as f:
            for m in range(minutes):
                f.write(_signal(60.0, 1000 + m))
        path.with_suffix(".partial").rename(path)
    return path


def audio_seconds(folder: Path) -> float:
    import soundfile as sf

    return sum(sf.info(p).duration for p in folder.iterdir())


# -- speed ----------------------------------------------------------------------------------------
def speed(work: Path, device: str, minutes: float) -> dict:
    folder = sound_library(work, minutes)
    total_s = audio_seconds(folder)
    data_dir = work / "speed-library"
    shutil.rmtree(data_dir, ignore_errors=True)
    settings = settings_for(work, device, data_dir)
    image, clap = encoder_from_settings(settings), audio_encoder_from_settings(settings)
    load_s = timed(clap.load)
    image.load()
    bare = _bare(clap, settings.audio_batch_size)
    others = CpuShare()
    model, features, commit = Stopwatch(), Stopwatch(), Stopwatch()
    cls = type(clap)
    with model.around(cls, "encode_audio"), features.around(cls, "preprocess_audio"), \
            commit.around(SpaceTable, "upsert"):
        t = time.perf_counter()
        report = MMSearch(settings, encoder=image, audio_encoder=clap).index([folder])
        wall = time.perf_counter() - t
    if report.skipped or report.embedded != len(list(folder.iterdir())):
        raise RuntimeError(f"benchmark index run went wrong: {report.summary()}")
    shutil.rmtree(data_dir, ignore_errors=True)
    windows = features.calls  # one feature extraction per window
    return {
        "files": report.embedded, "audio_s": round(total_s, 1), "windows": windows, "model_load_s": round(load_s, 2),
        "wall_s": round(wall, 2), "audio_s_per_s": round(total_s / wall, 2),
        "model_s": round(model.seconds, 2), "features_s_all_threads": round(features.seconds, 2),
        "commit_s": round(commit.seconds, 3), "model_windows_per_s_in_pipeline": round(windows / model.seconds, 2),
        "bare_model_windows_per_s": bare["windows_per_s"], "features_ms_per_window_1_thread": bare["features_ms"],
        "window_s": clap.audio_window_s(), "hop_s": clap.audio_window_s() * (1 - settings.audio_overlap),
        "batch_size": settings.audio_batch_size, "workers": settings.workers, "cpu_share_of_others": others.others(),
    }


def _bare(clap, batch: int, rounds: int = 3) -> dict:
    """The model alone on features computed beforehand, and the feature extractor alone, one thread."""
    rng = np.random.default_rng(1)
    windows = [rng.standard_normal(480_000).astype(np.float32) * 0.1 for _ in range(batch)]
    feats = [clap.preprocess_audio(w) for w in windows]  # warm-up
    feat_s = timed(lambda: [clap.preprocess_audio(w) for w in windows]) / batch
    clap.encode_audio(feats)  # warm-up
    model_s = sum(timed(lambda: clap.encode_audio(feats)) for _ in range(rounds))
    return {"windows_per_s": round(batch * rounds / model_s, 2), "features_ms": round(feat_s * 1000, 1)}


# -- memory ---------------------------------------------------------------------------------------
def rss_child(work: Path, device: str, path: Path, data_dir: Path) -> None:
    """Runs in the measured subprocess: load the models, index one long file, print one JSON line."""
    settings = settings_for(work, device, data_dir)
    image, clap = encoder_from_settings(settings), audio_encoder_from_settings(settings)
    image.load()
    clap.load()
    after_load = {"rss_after_load_mb": proc_status_mb("VmRSS"), "hwm_after_load_mb": proc_status_mb("VmHWM")}
    t = time.perf_counter()
    report = MMSearch(settings, encoder=image, audio_encoder=clap).index([path])
    print(json.dumps({**after_load, "embedded": report.embedded, "index_s": round(time.perf_counter() - t, 1),
                      "audio_s": round(report.audio_seconds, 1), "hwm_end_mb": proc_status_mb("VmHWM")}))


def rss(work: Path, device: str, minutes: int) -> dict:
    import soundfile as sf

    path = long_recording(work, minutes)
    data_dir = work / "rss-library"
    shutil.rmtree(data_dir, ignore_errors=True)
    cmd = [sys.executable, __file__, "--work", str(work), "--device", device, "--rss-child", str(path), str(data_dir)]
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.run(cmd, stdout=out, stderr=err)
        out.seek(0)
        err.seek(0)
        lines = [line for line in out.read().splitlines() if line.startswith("{")]
        if proc.returncode != 0 or not lines:
            raise RuntimeError(f"rss child failed ({proc.returncode}): {err.read()[-2000:]}")
    shutil.rmtree(data_dir, ignore_errors=True)
    result = json.loads(lines[-1])
    seconds = sf.info(path).duration
    return {"file": path.name, "file_mb": round(path.stat().st_size / 2**20, 1), "duration_s": round(seconds, 1),
            **result, "peak_rss_mb": result["hwm_end_mb"],
            "peak_minus_after_load_mb": round(result["hwm_end_mb"] - result["hwm_after_load_mb"], 1),
            "audio_s_per_s": round(seconds / result["index_s"], 2),
            "whole_file_at_48k_float64_mb": round(seconds * 48_000 * 8 / 2**20, 1),
            "whole_file_at_48k_float32_mono_mb": round(seconds * 48_000 * 4 / 2**20, 1)}


# -- report ---------------------------------------------------------------------------------------
def summary(result: dict) -> str:
    m = result["machine"]
    lines = [f"# Audio indexing, CLAP HTS-AT (clap-htsat-unfused architecture, random weights), {result['device']}",
             "", f"{m['cpu']}, {m['cores_usable']} usable cores, torch {m['torch']} ({m['torch_threads']} threads), "
             f"mmsearch {m['mmsearch_source']}", ""]
    if "speed" in result:
        s = result["speed"]
        lines += ["| speed | value |", "|---|---|",
                  f"| **audio indexed per wall second (MMSearch.index)** | **{s['audio_s_per_s']} s/s** |",
                  f"| library | {s['files']} files, {s['audio_s']} s of audio, {s['windows']} windows of "
                  f"{s['window_s']:g} s every {s['hop_s']:g} s |",
                  f"| wall / in the model / features (all threads) / commits | {s['wall_s']} / {s['model_s']} / "
                  f"{s['features_s_all_threads']} / {s['commit_s']} s |",
                  f"| model alone (windows/s, batch {s['batch_size']}) | {s['bare_model_windows_per_s']} |",
                  f"| model inside the pipeline (windows/s) | {s['model_windows_per_s_in_pipeline']} |",
                  f"| log-mel features, one thread (ms/window) | {s['features_ms_per_window_1_thread']} |",
                  f"| model load (s) | {s['model_load_s']} |",
                  f"| CPU share used by other processes meanwhile | {s['cpu_share_of_others']} |", ""]
    if "rss" in result:
        r = result["rss"]
        lines += ["| one long recording | value |", "|---|---|",
                  f"| file | {r['file']}: {r['duration_s']} s, 44.1 kHz stereo 16-bit, {r['file_mb']} MiB |",
                  f"| **peak RSS of the indexing process** | **{r['peak_rss_mb']} MiB** |",
                  f"| RSS after loading the models / peak minus that | {r['rss_after_load_mb']} / "
                  f"{r['peak_minus_after_load_mb']} MiB |",
                  f"| the file decoded whole at 48 kHz: float64 stereo / float32 mono | "
                  f"{r['whole_file_at_48k_float64_mb']} / {r['whole_file_at_48k_float32_mono_mb']} MiB |",
                  f"| indexing time / audio per wall second | {r['index_s']} s / {r['audio_s_per_s']} s/s |", ""]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--minutes", type=float, default=6.0, help="minutes of sounds for the speed test")
    ap.add_argument("--long-minutes", type=int, default=60, help="length of the recording for the memory test")
    ap.add_argument("--sections", default="speed,rss")
    ap.add_argument("--work", type=Path, default=ROOT / "bench" / "results" / "tmp" / "audio")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    ap.add_argument("--rss-child", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    if args.rss_child:
        return rss_child(args.work, args.device, *args.rss_child)
    result: dict = {"device": args.device, "machine": machine()}
    sections = args.sections.split(",")
    if "speed" in sections:
        result["speed"] = speed(args.work, args.device, args.minutes)
    if "rss" in sections:
        result["rss"] = rss(args.work, args.device, args.long_minutes)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"audio_{args.device}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2))
    text = summary(result)
    stem.with_suffix(".md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
