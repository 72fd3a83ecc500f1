"""Video indexing speed and memory: mmsearch's moments (sparse keyframe decode, small frames, a few frames per
moment) against the naive way (decode every frame at full size, one frame a second through the model).

    python bench/bench_video.py --seconds 30 60 --threads 2

Writes a 1080p H.264 video per length (scikit-image photos, a cut every 6 s, slow pan between cuts; x264
defaults: keyframes at cuts and every 250 frames), then for each: seconds of video per wall second, the
share of time spent decoding, and the peak RSS of a fresh process (so memory can be compared across lengths).
The picture model is ViT-B-32 with random weights (the architecture decides the cost, not the weights).
The sound side (CLAP) and memory on a 60-minute file: bench/bench_video_index.py.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def make_video(path: Path, seconds: int, fps: int = 30) -> Path:
    import av
    from PIL import Image
    from skimage import data

    if path.is_file():
        return path
    photos = [np.asarray(Image.fromarray(getattr(data, n)()).convert("RGB").resize((2100, 1200)))
              for n in ("astronaut", "coffee", "chelsea", "rocket", "camera")]
    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264", rate=fps, options={"preset": "ultrafast"})
        v.width, v.height, v.pix_fmt = 1920, 1080, "yuv420p"
        for i in range(seconds * fps):
            scene, t = divmod(i, 6 * fps)
            x = int(t * 180 / (6 * fps))  # a slow pan
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(photos[scene % 5][60:1140, x:x + 1920]),
                                               format="rgb24")
            frame.pts = i
            for p in v.encode(frame):
                out.mux(p)
        for p in v.encode():
            out.mux(p)
    return path


def model(threads: int):
    import open_clip
    import torch

    torch.set_num_threads(threads)
    m, _, preprocess = open_clip.create_model_and_transforms("ViT-B-32", pretrained=None)
    return m.eval(), preprocess


def encode(m, batch) -> None:
    import torch

    with torch.inference_mode():
        m.encode_image(torch.stack(batch))


def ours(path: Path, threads: int) -> dict:
    from mmsearch.media.shots import moments
    from mmsearch.media.video import iter_frames, probe_video

    m, preprocess = model(threads)
    started = time.perf_counter()
    decode = 0.0
    frames = n_moments = 0
    batch = []
    it = moments(iter_frames(path), probe_video(path).duration_s)
    while True:
        t0 = time.perf_counter()
        mo = next(it, None)
        decode += time.perf_counter() - t0
        if mo is None:
            break
        n_moments += 1
        batch += [preprocess(f.image) for f in mo.frames]
        frames += len(mo.frames)
        if len(batch) >= 32:
            encode(m, batch)
            batch = []
    if batch:
        encode(m, batch)
    return {"wall_s": time.perf_counter() - started, "decode_s": decode, "frames": frames, "moments": n_moments}


def naive(path: Path, threads: int) -> dict:
    import av
    from PIL import Image

    m, preprocess = model(threads)
    started = time.perf_counter()
    decode = 0.0
    frames, next_t, batch = 0, 0.0, []
    with av.open(str(path)) as c:
        t0 = time.perf_counter()
        for frame in c.decode(video=0):
            rgb = frame.to_ndarray(format="rgb24")  # every frame, full size
            if frame.time >= next_t:
                decode += time.perf_counter() - t0
                batch.append(preprocess(Image.fromarray(rgb)))
                frames += 1
                next_t += 1.0
                if len(batch) >= 32:
                    encode(m, batch)
                    batch = []
                t0 = time.perf_counter()
        decode += time.perf_counter() - t0
    if batch:
        encode(m, batch)
    return {"wall_s": time.perf_counter() - started, "decode_s": decode, "frames": frames}


def child(way: str, path: str, threads: int) -> None:
    out = (ours if way == "ours" else naive)(Path(path), threads)
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, nargs="+", default=[30, 60])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--folder", type=Path, default=Path("/tmp/mmsearch-bench-video"))
    ap.add_argument("--child", nargs=2)
    args = ap.parse_args()
    if args.child:
        return child(args.child[0], args.child[1], args.threads)
    args.folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for seconds in args.seconds:
        path = make_video(args.folder / f"1080p-{seconds}s.mp4", seconds)
        for way in ("ours", "naive"):
            done = subprocess.run([sys.executable, __file__, "--child", way, str(path), "--threads",
                                   str(args.threads)], capture_output=True, text=True, check=True)
            r = json.loads(done.stdout.strip().splitlines()[-1])
            r.update(way=way, video_s=seconds, speed=seconds / r["wall_s"], decode_share=r["decode_s"] / r["wall_s"])
            rows.append(r)
            print(json.dumps(r), flush=True)
    print("\n| video | way | video s per wall s | decode share | frames embedded | peak RSS MB |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['video_s']} s 1080p | {r['way']} | {r['speed']:.2f} | {r['decode_share']:.0%} | "
              f"{r['frames']} | {r['peak_rss_mb']:.0f} |")


if __name__ == "__main__":
    main()
