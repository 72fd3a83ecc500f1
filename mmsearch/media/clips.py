"""A short clip around a moment, for the web page to play: small WebM (VP8 + Opus), which every browser plays
whatever the original's codec (HEVC from a phone, ProRes, AVI), cut from a keyframe seek before the moment.

The web server never sends an indexed file (server/policy.py): it sends this rendition, written under the
library's thumbs folder like every other rendition.
"""

from __future__ import annotations

import fractions
import time
from pathlib import Path
from typing import Any

from mmsearch.errors import BadMedia
from mmsearch.media.video import _opened, _said, probe_video

CLIP_HEIGHT = 360
CLIP_FPS = 24
LEAD_S = 3.0  # seconds before the moment, so the viewer sees it begin
MAX_CLIP_S = 40.0


def clip_window(start_s: float, end_s: float, duration_s: float) -> tuple[float, float]:
    """[from, to] of the file a moment's clip covers: a few seconds of lead-in, at most MAX_CLIP_S long."""
    lo = max(0.0, start_s - LEAD_S)
    hi = min(max(duration_s, end_s), end_s + LEAD_S, lo + MAX_CLIP_S)
    return round(lo, 3), round(max(hi, lo + 0.5), 3)


def write_clip(path: str, out: Path, start_s: float, end_s: float, budget_s: float = 120.0) -> None:
    """Encode [start_s, end_s] of `path` into `out` (WebM). BadMedia if the file cannot be read."""
    import av

    started = time.monotonic()
    rotation = probe_video(path).rotation
    with _opened(path, budget_s) as src:
        if not src.streams.video:
            raise BadMedia(path, "no video stream in the file")
        vin = src.streams.video[0]
        vin.codec_context.thread_type = "AUTO"
        ain = src.streams.audio[0] if src.streams.audio else None
        if start_s > 0 and vin.time_base:
            src.seek(int(start_s / vin.time_base), stream=vin, backward=True)
        with av.open(str(out), "w", format="webm") as dst:
            vout = _video_stream(dst, vin.codec_context, rotation)  # every stream before the first packet
            wrote = False
            aout, fifo, resampler = None, None, None
            if ain is not None and ain.codec_context is not None:
                aout = dst.add_stream("libopus", rate=48_000)
                aout.layout = "stereo"
                fifo, resampler = av.AudioFifo(), av.AudioResampler(format="s16", layout="stereo", rate=48_000)
            last_pts = -1
            audio_at = 0
            streams = [vin] + ([ain] if aout is not None else [])
            try:
                for packet in src.demux(*streams):
                    if time.monotonic() - started > budget_s:
                        raise BadMedia(path, f"making a preview took longer than {budget_s:g} s")
                    for frame in packet.decode():
                        t = frame.time
                        if t is None or t < start_s - 1e-3:
                            continue
                        if t > end_s:
                            if packet.stream is vin:
                                raise StopIteration
                            continue
                        if packet.stream is vin:
                            wrote = True
                            pts = int(round((t - start_s) * 1000))
                            if pts <= last_pts:
                                continue
                            last_pts = pts
                            small = frame.reformat(width=vout.width, height=vout.height, format="yuv420p")
                            small.pts, small.time_base = pts, fractions.Fraction(1, 1000)
                            for p in vout.encode(small):
                                dst.mux(p)
                        else:
                            audio_at = _feed_audio(dst, aout, fifo, resampler, frame, audio_at)
            except StopIteration:
                pass
            except BadMedia:
                raise
            except Exception as exc:  # noqa: BLE001 - whatever the decoder says, the clip is not made
                raise BadMedia(path, f"cannot make a preview ({_said(exc)})") from None
            if not wrote:
                raise BadMedia(path, f"no frames between {start_s:g} s and {end_s:g} s")
            for p in vout.encode():
                dst.mux(p)
            if aout is not None:
                for p in aout.encode():
                    dst.mux(p)


def _video_stream(dst: Any, cc: Any, rot: int) -> Any:
    h = min(CLIP_HEIGHT, int(cc.height)) // 2 * 2
    w = max(2, int(round(cc.width * h / max(cc.height, 1))) // 2 * 2)
    vout = dst.add_stream("libvpx", rate=CLIP_FPS, options={"deadline": "realtime", "cpu-used": "8"})
    vout.width, vout.height, vout.pix_fmt = w, max(h, 2), "yuv420p"
    vout.time_base = fractions.Fraction(1, 1000)
    vout.bit_rate = 600_000
    if rot % 360:
        vout.set_display_rotation(int(rot))  # the browser turns it, as it would the original
    return vout


def _feed_audio(dst: Any, aout: Any, fifo: Any, resampler: Any, frame: Any, at: int) -> int:
    frame.pts = None  # the fifo counts samples itself
    for out in resampler.resample(frame):
        fifo.write(out)
    while fifo.samples >= 960:
        chunk = fifo.read(960)
        chunk.pts, chunk.time_base = at, fractions.Fraction(1, 48_000)
        at += 960
        for p in aout.encode(chunk):
            dst.mux(p)
    return at


