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
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path

import numpy as np
from common import ROOT, CpuShare, Stopwatch, machine, own_cpu_s, proc_status_mb, timed

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
class Recorder:
    """Keeps every batch the pipeline hands to encode_audio, so the bare model can run the same windows."""

    def __init__(self) -> None:
        self.batches: list[list] = []

    @contextmanager
    def around(self, owner: type, name: str = "encode_audio"):
        original = getattr(owner, name)

        def wrapper(encoder, batch):  # noqa: ANN001
            self.batches.append([(w.clone(), longer) for w, longer in batch])
            return original(encoder, batch)

        setattr(owner, name, wrapper)
        try:
            yield self
        finally:
            setattr(owner, name, original)


def pipeline_run(settings: Settings, image, clap, folder: Path, record: bool) -> tuple[dict, list[list]]:  # noqa: ANN001
    """One MMSearch.index() of the folder into a fresh library, split into model forward, log-mel, commits."""
    shutil.rmtree(settings.data_dir, ignore_errors=True)
    cls = type(clap)
    forward, log_mel, padding, commit, rec = Stopwatch(), Stopwatch(), Stopwatch(), Stopwatch(), Recorder()
    with forward.around(clap._model, "get_audio_features"), log_mel.around(cls, "_log_mel"), \
            padding.around(cls, "preprocess_audio"), commit.around(SpaceTable, "upsert"):
        with rec.around(cls) if record else nullcontext():
            t, cpu = time.perf_counter(), own_cpu_s()
            report = MMSearch(settings, encoder=image, audio_encoder=clap).index([folder])
            wall, cpu = time.perf_counter() - t, own_cpu_s() - cpu
    if report.skipped or report.embedded != len(list(folder.iterdir())):
        raise RuntimeError(f"benchmark index run went wrong: {report.summary()}")
    shutil.rmtree(settings.data_dir, ignore_errors=True)
    windows = padding.calls  # one repeat-pad per window
    return {"wall_s": wall, "cpu_s": cpu, "windows": windows, "windows_per_s": windows / wall,
            "forward_s": forward.seconds, "log_mel_s": log_mel.seconds, "padding_s_all_threads": padding.seconds,
            "commit_s": commit.seconds, "files": report.embedded}, rec.batches


def bare_run(clap, batches: list[list]) -> dict:  # noqa: ANN001
    """encode_audio (batched log-mel + model forward) on the pipeline's own windows, batched as it batched them:
    no walking, decoding, resampling, hashing, pooling or commits, so this is the ceiling the pipeline nears."""
    cls = type(clap)
    forward, log_mel = Stopwatch(), Stopwatch()
    windows = sum(len(b) for b in batches)
    with forward.around(clap._model, "get_audio_features"), log_mel.around(cls, "_log_mel"):
        t, cpu = time.perf_counter(), own_cpu_s()
        for batch in batches:
            clap.encode_audio(batch)
        wall, cpu = time.perf_counter() - t, own_cpu_s() - cpu
    return {"wall_s": wall, "cpu_s": cpu, "windows": windows, "windows_per_s": windows / wall,
            "forward_s": forward.seconds, "log_mel_s": log_mel.seconds}


def speed(work: Path, device: str, minutes: float, repeats: int) -> dict:
    folder = sound_library(work, minutes)
    total_s = audio_seconds(folder)
    settings = settings_for(work, device, work / "speed-library")
    image, clap = encoder_from_settings(settings), audio_encoder_from_settings(settings)
    load_s = timed(clap.load)
    image.load()
    others = CpuShare()
    _, batches = pipeline_run(settings, image, clap, folder, record=True)  # warm-up; records the windows
    clap.encode_audio(batches[0])  # warm-up of the bare path
    runs: dict[str, list[dict]] = {"pipeline": [], "bare": []}
    for _ in range(repeats):  # interleaved, so load from other users hits both alike
        runs["bare"].append(bare_run(clap, batches))
        runs["pipeline"].append(pipeline_run(settings, image, clap, folder, record=False)[0])
    med = lambda kind, key: statistics.median(r[key] for r in runs[kind])  # noqa: E731
    windows = runs["pipeline"][0]["windows"]
    if windows != sum(len(b) for b in batches):
        raise RuntimeError("the pipeline embedded a different number of windows from the recorded run")
    pipe_wall, bare_wall = med("pipeline", "wall_s"), med("bare", "wall_s")
    r2 = lambda x: round(x, 2)  # noqa: E731
    return {
        "files": runs["pipeline"][0]["files"], "audio_s": round(total_s, 1), "windows": windows,
        "model_load_s": r2(load_s), "repeats": repeats,
        "wall_s": r2(pipe_wall), "audio_s_per_s": r2(total_s / pipe_wall),
        "pipeline_windows_per_s": r2(windows / pipe_wall),
        "bare_windows_per_s": r2(windows / bare_wall),
        "ratio_pipeline_to_bare": round(bare_wall / pipe_wall, 3),
        "cpu_ratio_bare_to_pipeline": round(med("bare", "cpu_s") / med("pipeline", "cpu_s"), 3),
        "pipeline_forward_s": r2(med("pipeline", "forward_s")), "pipeline_log_mel_s": r2(med("pipeline", "log_mel_s")),
        "bare_forward_s": r2(med("bare", "forward_s")), "bare_log_mel_s": r2(med("bare", "log_mel_s")),
        "log_mel_ms_per_window": r2(med("bare", "log_mel_s") / windows * 1000),
        "padding_ms_per_window": r2(med("pipeline", "padding_s_all_threads") / windows * 1000),
        "commit_s": round(med("pipeline", "commit_s"), 3),
        "window_s": clap.audio_window_s(), "hop_s": clap.audio_window_s() * (1 - settings.audio_overlap),
        "batch_size": settings.audio_batch_size, "workers": settings.workers, "cpu_share_of_others": others.others(),
        "runs": {k: [{m: round(v, 3) for m, v in r.items()} for r in rs] for k, rs in runs.items()},
    }


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
    for name, run in result.get("section_runs", {}).items():
        rm = run.get("machine", {})
        load = "/".join(f"{x:.2f}" for x in rm.get("loadavg_start", []))
        lines.append(f"- section `{name}`: `{run.get('command', 'an earlier run')}` (mmsearch "
                     f"{rm.get('mmsearch_source', '?')}, load average at start {load or '?'})")
    lines += ["", "Taken under load: the 2 cores are shared with other sessions; each section's CPU share used by "
              "other processes is listed, so treat rates as lower bounds and differences under ~10% as noise.", ""]
    if "speed" in result:
        s = result["speed"]
        lines += ["| speed | value |", "|---|---|",
                  f"| **audio indexed per wall second (MMSearch.index)** | **{s['audio_s_per_s']} s/s** |",
                  f"| library | {s['files']} files, {s['audio_s']} s of audio, {s['windows']} windows of "
                  f"{s['window_s']:g} s every {s['hop_s']:g} s |",
                  f"| (a) bare: log-mel + model forward on the pipeline's own windows and batches (windows/s) | "
                  f"{s['bare_windows_per_s']} |",
                  f"| (b) MMSearch.index() pipeline (windows/s) | {s['pipeline_windows_per_s']} |",
                  f"| **ratio (b)/(a)** (wall; CPU ratio bare/pipeline) | **{s['ratio_pipeline_to_bare']}** "
                  f"({s['cpu_ratio_bare_to_pipeline']}) |",
                  f"| pipeline wall / model forward / log-mel / commits (s) | {s['wall_s']} / "
                  f"{s['pipeline_forward_s']} / {s['pipeline_log_mel_s']} / {s['commit_s']} |",
                  f"| bare model forward / log-mel (s) | {s['bare_forward_s']} / {s['bare_log_mel_s']} |",
                  f"| log-mel, batched in torch (ms/window) | {s['log_mel_ms_per_window']} |",
                  f"| repeat-padding a window (ms/window, worker threads) | {s['padding_ms_per_window']} |",
                  f"| model load (s) | {s['model_load_s']} |",
                  f"| CPU share used by other processes meanwhile | {s['cpu_share_of_others']} |",
                  f"| median of | {s['repeats']} interleaved runs each |", ""]
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


def merged(path: Path, new: dict, command: str) -> dict:
    """A run of some --sections replaces those sections of the earlier result and keeps the others."""
    ran = [name for name in ("speed", "rss") if name in new]
    new["section_runs"] = {name: {"command": command, "machine": new["machine"]} for name in ran}
    if not path.is_file():
        return new
    old = json.loads(path.read_text())
    for name in ("speed", "rss"):
        if name not in new and name in old:
            new[name] = old[name]
            new["section_runs"][name] = old.get("section_runs", {}).get(name, {"machine": old.get("machine", {})})
    return new


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--minutes", type=float, default=6.0, help="minutes of sounds for the speed test")
    ap.add_argument("--long-minutes", type=int, default=60, help="length of the recording for the memory test")
    ap.add_argument("--repeats", type=int, default=2, help="interleaved bare/pipeline runs for the speed test")
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
        result["speed"] = speed(args.work, args.device, args.minutes, args.repeats)
    if "rss" in sections:
        result["rss"] = rss(args.work, args.device, args.long_minutes)
    result["machine"]["loadavg_end"] = os.getloadavg()
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"audio_{args.device}"
    result = merged(stem.with_suffix(".json"), result, " ".join(["bench/bench_audio.py", *sys.argv[1:]]))
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2))
    text = summary(result)
    stem.with_suffix(".md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
