"""Whole-pipeline video indexing, picture (ViT-B-32) and soundtrack (CLAP HTS-AT), and peak memory against length.

    python bench/bench_video_index.py --minutes 2 60 --fps 2

bench_video.py measures the picture side alone against the naive way; this one runs `MMSearch.index()` on
one 1080p H.264 + AAC file per length, in a fresh process each (so peak RSS compares across lengths), with
both models at random weights (the architectures decide the cost): ViT-B-32 for the frames and
laion/clap-htsat-unfused's architecture for the soundtrack, cut at the moments as the index does.

The files are cheap to write and honest to decode: five scikit-image photos, a cut every 6 s, a keyframe
every `--keyint-s` seconds (phones write one about every second), `--fps` frames a second (a 60-minute
1080p file at 2 fps is 7200 frames to encode instead of 108000 at 30), and a soundtrack of tones and noise
that changes at every cut. The frame rate changes how many frames are decoded, not how many are embedded
(moments and the frames-per-hour cap decide that), and not the soundtrack's cost at all.

Reports, per length: wall seconds in the picture and sound pipelines and in their models, seconds of video
(and of soundtrack) per wall second for each, peak RSS of the process and RSS after loading the models, and
the load average. Scratch files go to --folder (default /tmp/mmsearch-bench-video-index) and are deleted
afterwards (models too) unless --keep.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
from common import ROOT, Stopwatch, proc_status_mb

RATE = 48_000
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "camera")


def make_video(path: Path, minutes: float, fps: int, keyint_s: float) -> Path:
    """1080p H.264 + AAC mono, a new photo and a new sound every 6 s, written a frame at a time."""
    import av
    from PIL import Image
    from skimage import data

    if path.is_file():
        return path
    pictures = [np.asarray(Image.fromarray(getattr(data, n)()).convert("RGB").resize((1920, 1080))) for n in PHOTOS]
    tmp = path.with_suffix(".partial.mp4")
    seconds = int(minutes * 60)
    rng = np.random.default_rng(0)
    with av.open(str(tmp), "w") as out:
        v = out.add_stream("libx264", rate=fps, options={"preset": "ultrafast", "crf": "30",
                                                         "g": str(max(1, int(fps * keyint_s)))})
        v.width, v.height, v.pix_fmt = 1920, 1080, "yuv420p"
        a = out.add_stream("aac", rate=RATE)
        a.layout = "mono"
        frames = [av.VideoFrame.from_ndarray(np.ascontiguousarray(p), format="rgb24").reformat(format="yuv420p")
                  for p in pictures]
        step = a.codec_context.frame_size or 1024
        sample = 0
        for second in range(seconds):
            scene = second // 6
            for i in range(fps):
                f = frames[scene % len(frames)]
                f.pts = second * fps + i
                for p in v.encode(f):
                    out.mux(p)
            t = np.arange(RATE) / RATE + second
            tone = 0.2 * np.sin(2 * np.pi * (220 + 110 * (scene % 7)) * t)
            chunk = (tone + 0.02 * rng.standard_normal(RATE)).astype(np.float32)
            for s in range(0, RATE - step + 1, step):
                af = av.AudioFrame.from_ndarray(chunk[None, s:s + step], format="flt", layout="mono")
                af.sample_rate, af.pts = RATE, sample
                sample += step
                for p in a.encode(af):
                    out.mux(p)
        for p in v.encode():
            out.mux(p)
        for p in a.encode():
            out.mux(p)
    tmp.rename(path)
    return path


def child(work: Path, path: Path, data_dir: Path, threads: int) -> None:
    """In the measured process: load both models, index the one file, print one JSON line."""
    import torch

    torch.set_num_threads(threads)
    sys.path.insert(0, str(ROOT / "bench"))
    from bench_audio import clap_folder

    from mmsearch.ingest.video import VideoPipeline, VideoSoundPipeline
    from mmsearch.service import MMSearch, audio_encoder_from_settings, encoder_from_settings
    from mmsearch.settings import Settings

    settings = Settings(data_dir=data_dir, models_dir=work / "models", model="ViT-B-32", pretrained="random",
                        device="cpu", offline=True, audio_model=str(clap_folder(work)), text_export=False)
    image, clap = encoder_from_settings(settings), audio_encoder_from_settings(settings)
    image.load()
    clap.load()
    after_load = {"rss_after_load_mb": proc_status_mb("VmRSS"), "hwm_after_load_mb": proc_status_mb("VmHWM")}
    watches = {k: Stopwatch() for k in ("picture", "sound", "picture_model", "sound_model")}
    counted = {"frames": 0, "windows": 0}
    for owner, name, key in ((type(image), "encode_images", "frames"), (type(clap), "encode_audio", "windows")):
        setattr(owner, name, _counting(getattr(owner, name), counted, key))
    samples: list[tuple[float, float]] = []  # (seconds into the index run, VmRSS MiB), every 2 s
    done = threading.Event()
    started = time.perf_counter()

    def sample() -> None:
        while not done.wait(2.0):
            samples.append((round(time.perf_counter() - started, 1), proc_status_mb("VmRSS")))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    with watches["picture"].around(VideoPipeline, "embed"), watches["sound"].around(VideoSoundPipeline, "embed"), \
            watches["picture_model"].around(type(image), "encode_images"), \
            watches["sound_model"].around(type(clap), "encode_audio"):
        report = MMSearch(settings, encoder=image, audio_encoder=clap).index([path])
    wall = time.perf_counter() - started
    done.set()
    sampler.join()
    if report.skipped:
        raise SystemExit(f"skipped: {report.skipped}")
    print(json.dumps({**after_load, "index_s": round(wall, 1), "hwm_end_mb": proc_status_mb("VmHWM"),
                      **{f"{k}_s": round(w.seconds, 1) for k, w in watches.items()},
                      **counted, "moments": report_moments(settings, image), "rss_curve": rss_curve(samples)}))


def rss_curve(samples: list[tuple[float, float]]) -> dict:
    """Does RSS climb with the length indexed? The highest RSS in each quarter of the run, and the least-squares
    slope over its second half (MiB per hour of wall time), besides the samples themselves."""
    if len(samples) < 8:
        return {"samples": samples}
    n = len(samples)
    quarters = [max(r for _, r in samples[i * n // 4:(i + 1) * n // 4]) for i in range(4)]
    half = np.array(samples[n // 2:])
    slope = float(np.polyfit(half[:, 0], half[:, 1], 1)[0]) * 3600
    return {"max_by_quarter_mb": [round(q, 1) for q in quarters], "second_half_slope_mb_per_h": round(slope, 1),
            "samples": samples}


def _counting(method, counted: dict, key: str):  # noqa: ANN001, ANN202
    def wrapper(encoder, batch):  # noqa: ANN001, ANN202
        counted[key] += len(batch)
        return method(encoder, batch)
    return wrapper


def report_moments(settings, image) -> int:  # noqa: ANN001
    from mmsearch.store.library import Library

    return Library(settings.data_dir).table("video", image.space).count()


def run_one(work: Path, path: Path, threads: int) -> dict:
    import av

    data_dir = work / "library"
    shutil.rmtree(data_dir, ignore_errors=True)
    load = os.getloadavg()
    done = subprocess.run([sys.executable, __file__, "--child", str(work), str(path), str(data_dir),
                           "--threads", str(threads)], capture_output=True, text=True)
    shutil.rmtree(data_dir, ignore_errors=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"child failed ({done.returncode}): {done.stderr[-3000:]}")
    r = json.loads(lines[-1])
    with av.open(str(path)) as c:
        duration = float(c.duration / 1_000_000)
    return {"file": path.name, "file_mb": round(path.stat().st_size / 2**20, 1), "duration_s": round(duration, 1),
            **r, "picture_video_s_per_s": round(duration / max(r["picture_s"], 1e-9), 2),
            "sound_audio_s_per_s": round(duration / max(r["sound_s"], 1e-9), 2),
            "overall_video_s_per_s": round(duration / r["index_s"], 2),
            "picture_decode_share": round(1 - r["picture_model_s"] / max(r["picture_s"], 1e-9), 3),
            "peak_minus_after_load_mb": round(r["hwm_end_mb"] - r["hwm_after_load_mb"], 1),
            "loadavg_start": [round(x, 2) for x in load], "loadavg_end": [round(x, 2) for x in os.getloadavg()]}


def table(rows: list[dict]) -> str:
    out = ["| video | picture: video s / wall s (decode share) | sound: audio s / wall s | whole index: s / s "
           "| moments | frames / sound windows embedded | peak RSS MiB | RSS after model load MiB | peak - after load MiB | load avg start→end |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['duration_s'] / 60:g} min 1080p ({r['file_mb']} MiB) | {r['picture_video_s_per_s']} "
                   f"({r['picture_decode_share']:.0%}) | {r['sound_audio_s_per_s']} | {r['overall_video_s_per_s']} | "
                   f"{r['moments']} | {r['frames']} / {r['windows']} | {r['hwm_end_mb']:.0f} | {r['rss_after_load_mb']:.0f} | "
                   f"{r['peak_minus_after_load_mb']:.0f} | {r['loadavg_start'][0]} → {r['loadavg_end'][0]} |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, nargs="+", default=[2, 60])
    ap.add_argument("--fps", type=int, default=2)
    ap.add_argument("--keyint-s", type=float, default=1.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--folder", type=Path, default=Path("/tmp/mmsearch-bench-video-index"))
    ap.add_argument("--keep", action="store_true", help="Keep the generated videos.")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "video_index.json")
    ap.add_argument("--child", nargs=3, type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(*args.child, args.threads)
    args.folder.mkdir(parents=True, exist_ok=True)
    rows = []
    try:
        for minutes in args.minutes:
            t = time.perf_counter()
            path = make_video(args.folder / f"1080p-{minutes:g}min-{args.fps}fps.mp4", minutes, args.fps, args.keyint_s)
            print(f"wrote {path.name} in {time.perf_counter() - t:.0f} s", flush=True)
            rows.append(run_one(args.folder, path, args.threads))
            print(json.dumps(rows[-1]), flush=True)
            args.out.write_text(json.dumps({"command": " ".join(sys.argv), "fps": args.fps,
                                            "keyint_s": args.keyint_s, "rows": rows}, indent=1))
    finally:
        if not args.keep:  # the videos (hundreds of MiB) and the random-weight CLAP (~600 MiB)
            shutil.rmtree(args.folder, ignore_errors=True)
    print(table(rows))


if __name__ == "__main__":
    main()
