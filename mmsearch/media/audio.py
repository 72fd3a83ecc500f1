"""Audio decoding for files of any length: streamed, mixed to mono and resampled block by block.

Files are never decoded whole. libsndfile (via soundfile) reads WAV, FLAC, MP3, OGG/Vorbis/Opus and AIFF
in blocks; audioread (ffmpeg or GStreamer, where installed) covers containers libsndfile cannot open,
such as M4A/AAC. Blocks are mixed to mono and resampled with soxr's streaming resampler: the same soxr
"HQ" filter `librosa.load` uses, but stateful across blocks, so an hour-long file passes through in
constant memory (one window plus one block, float32) with no seams at block edges. This is also why
librosa itself is not used: its loader returns the whole file as one array.
"""

from __future__ import annotations

from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np

from mmsearch.errors import BadMedia
from mmsearch.media.checks import readable_size

# What libsndfile reads here, and what only an audioread backend (ffmpeg, GStreamer) can decode.
SNDFILE_EXTENSIONS = frozenset({".wav", ".wave", ".flac", ".mp3", ".ogg", ".oga", ".opus", ".aif", ".aiff", ".au"})
AUDIOREAD_ONLY_EXTENSIONS = frozenset({".m4a", ".aac", ".mp4a", ".wma"})
AUDIO_EXTENSIONS = SNDFILE_EXTENSIONS | AUDIOREAD_ONLY_EXTENSIONS

BLOCK_S = 1.0  # seconds of source audio decoded at a time


def supported_extensions() -> frozenset[str]:
    """Every extension the walk picks up; files no decoder here can read are skipped with that reason."""
    return AUDIO_EXTENSIONS


@dataclass(frozen=True)
class AudioInfo:
    duration_s: float
    sample_rate: int
    channels: int
    format: str  # container/encoding, e.g. "WAV/PCM_16", "MP3/MPEG_LAYER_III"


@dataclass(frozen=True)
class Window:
    offset_s: float  # start in the file
    samples: np.ndarray  # mono float32 at the requested rate; the last window may be shorter


@dataclass
class _Source:
    info: AudioInfo
    blocks: Callable[[int], Iterator[np.ndarray]]  # frames per block -> (frames, channels) float32
    seek: Callable[[int], object] | None = None  # to a frame, where the decoder can


def probe(path: str | Path) -> AudioInfo:
    """Duration, rate, channels and format, without decoding; BadMedia for anything unusable."""
    with _open(str(path)) as src:
        return src.info


def stream_windows(path: str | Path, rate: int, window_s: float, hop_s: float,
                   max_s: float | None = None) -> Iterator[Window]:
    """Mono windows of `window_s` every `hop_s` seconds, decoded lazily from the file."""
    path = str(path)
    with _open(path) as src:
        mono = _decoded_mono(src, path, rate, max_s)
        yield from _windows(mono, rate, window_s, hop_s)


def excerpt(path: str | Path, rate: int, start_s: float, seconds: float) -> np.ndarray:
    """Mono float32 at `rate` from start_s, at most `seconds` long: a preview to play, decoded from there on."""
    path = str(path)
    with _open(path) as src:
        return np.concatenate([np.zeros(0, np.float32), *_decoded_mono(src, path, rate, seconds, start_s)])


def stream_spans(path: str | Path, rate: int, spans: Sequence[tuple[float, float]]) -> Iterator[tuple[int, np.ndarray]]:
    """(index, mono samples) of each [start, end) span, for spans in time order that do not overlap (a
    video's moments): one pass over the file, holding one span plus one block. A span past the end of the
    recording is not yielded; one cut short by it is yielded as far as it goes."""
    path = str(path)
    with _open(path) as src:
        buf = np.zeros(0, np.float32)
        base = 0  # sample index of buf[0]
        todo = iter(enumerate(spans))
        current = next(todo, None)
        for block in _decoded_mono(src, path, rate, None):
            buf = np.concatenate([buf, block]) if len(buf) else block
            while current is not None and base + len(buf) >= int(current[1][1] * rate):
                n, (start, end) = current
                lo, hi = max(int(start * rate) - base, 0), int(end * rate) - base
                yield n, buf[lo:hi].copy()
                buf, base = buf[hi:], base + hi
                current = next(todo, None)
            if current is None:
                return
            lo = int(current[1][0] * rate) - base
            if lo > 0:  # samples before the next span (a gap) are never needed again
                buf, base = buf[lo:], base + lo
        if current is not None and len(buf):
            n, (start, _) = current
            lo = max(int(start * rate) - base, 0)
            if lo < len(buf):
                yield n, buf[lo:].copy()


def array_windows(samples: np.ndarray, sample_rate: int, rate: int, window_s: float, hop_s: float,
                  max_s: float | None = None) -> Iterator[Window]:
    """The same windows for audio already in memory, e.g. a microphone recording (int or float PCM)."""
    x = _as_float(np.asarray(samples))
    if x.ndim == 2:  # (frames, channels), as Gradio and soundfile lay it out
        x = x.mean(axis=1)
    if x.ndim != 1 or x.size == 0 or sample_rate <= 0:
        raise BadMedia("<recording>", "no audio samples in the recording")
    if max_s is not None:
        x = x[: int(max_s * sample_rate)]
    yield from _windows([_resample(x, sample_rate, rate)], rate, window_s, hop_s)


# -- decoding ---------------------------------------------------------------------------------------
@contextmanager
def _open(path: str) -> Iterator[_Source]:
    readable_size(path)
    import soundfile as sf

    try:
        handle = sf.SoundFile(path)
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        # libsndfile says "file does not exist" (code 7) for some garbage it tried as MP3; the file does exist.
        detail = getattr(exc, "error_string", "") or str(exc)
        sndfile_error = "unknown or corrupt format" if getattr(exc, "code", None) == 7 else detail.rstrip(".")
        handle = None
    if handle is None:
        opener = _open_pyav if _has_pyav() else _open_audioread
        with opener(path, sndfile_error) as src:
            yield src
        return
    with handle:
        info = AudioInfo(handle.frames / handle.samplerate, handle.samplerate, handle.channels,
                         f"{handle.format}/{handle.subtype}")
        _check(path, info)
        yield _Source(info, lambda n: handle.blocks(blocksize=n, dtype="float32", always_2d=True), handle.seek)


def _has_pyav() -> bool:
    try:
        import av  # noqa: F401
    except ImportError:
        return False
    return True


@contextmanager
def _open_pyav(path: str, sndfile_error: str) -> Iterator[_Source]:
    """What libsndfile cannot open (M4A/AAC, Opus or AAC in MP4, WMA, a video's soundtrack), through the
    FFmpeg inside PyAV's wheels: the first audio stream, decoded packet by packet as float32."""
    import av

    try:
        container = av.open(path, timeout=(30.0, 60.0))
    except Exception as exc:  # noqa: BLE001 - InvalidDataError, EOFError ...: not a file FFmpeg can read either
        raise BadMedia(path, f"not a readable audio file ({sndfile_error})") from None
    with closing(container):
        if not container.streams.audio:
            raise BadMedia(path, "no audio stream in the file")
        stream = container.streams.audio[0]
        cc = stream.codec_context
        if cc is None:
            raise BadMedia(path, "unsupported codec: no decoder for this sound in this FFmpeg")
        channels = max(int(cc.channels or 0), 1)
        rate = int(cc.sample_rate or 0)
        if stream.duration and stream.time_base:
            duration = float(stream.duration * stream.time_base)
        else:
            duration = (container.duration or 0) / 1_000_000
        info = AudioInfo(duration, rate, channels, f"{_container_name(container, path)}/{cc.name.upper()}")
        _check(path, info)

        def blocks(_frames: int) -> Iterator[np.ndarray]:  # one decoded packet at a time
            resampler = av.AudioResampler(format="flt", layout=cc.layout.name if cc.layout else None, rate=rate)
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    yield out.to_ndarray().reshape(-1, channels).astype(np.float32, copy=False)

        yield _Source(info, blocks)


def _container_name(container: object, path: str) -> str:
    name = getattr(getattr(container, "format", None), "name", "") or ""
    return Path(path).suffix.lstrip(".").upper() if name.startswith("mov") or not name else name.split(",")[0].upper()


@contextmanager
def _open_audioread(path: str, sndfile_error: str) -> Iterator[_Source]:
    import audioread

    ext = Path(path).suffix.lower()
    try:
        handle = audioread.audio_open(path)
    except Exception:  # noqa: BLE001 - NoBackendError, DecodeError, EOFError, wave.Error ... all mean "not here"
        if ext in AUDIOREAD_ONLY_EXTENSIONS:
            reason = (f"unsupported codec: no decoder for {ext} files here (libsndfile cannot read them; "
                      f"install ffmpeg so audioread can)")
        else:
            reason = f"not a readable audio file ({sndfile_error})"
        raise BadMedia(path, reason) from None
    with handle:
        channels = max(int(handle.channels), 1)
        info = AudioInfo(float(handle.duration), int(handle.samplerate), channels, ext.lstrip(".").upper())
        _check(path, info)

        def blocks(_frames: int) -> Iterator[np.ndarray]:  # audioread picks its own buffer size
            for buf in handle:
                yield (np.frombuffer(buf, "<i2").reshape(-1, channels) / 32768.0).astype(np.float32)

        yield _Source(info, blocks)


def _check(path: str, info: AudioInfo) -> None:
    if info.sample_rate <= 0 or info.channels <= 0:
        raise BadMedia(path, f"corrupt header ({info.sample_rate} Hz, {info.channels} channels)")
    if info.duration_s <= 0:
        raise BadMedia(path, "no audio in the file (0 samples)")


def _decoded_mono(src: _Source, path: str, rate: int, max_s: float | None,
                  start_s: float = 0.0) -> Iterator[np.ndarray]:
    """Mono float32 blocks at `rate`. Decoding errors mid-file become BadMedia naming the position."""
    import soxr

    in_rate = src.info.sample_rate
    limit = None if max_s is None else int(max_s * in_rate)
    stream = None if in_rate == rate else soxr.ResampleStream(in_rate, rate, 1, dtype="float32", quality="HQ")
    read = 0
    skip = int(start_s * in_rate)
    if skip and src.seek is not None:
        src.seek(skip)
        skip = 0
    blocks = src.blocks(max(int(BLOCK_S * in_rate), 1024))
    while limit is None or read < limit:
        try:
            block = next(blocks, None)
        except Exception as exc:  # noqa: BLE001 - any decoder failure is this file's problem only
            raise BadMedia(path, f"corrupt audio after {read / in_rate:.1f} s ({exc})") from None
        if block is None:
            break
        if skip:  # a decoder that cannot seek: decode up to the start and drop it
            dropped = min(skip, len(block))
            block, skip = block[dropped:], skip - dropped
            if not len(block):
                continue
        if limit is not None:
            block = block[: limit - read]
        read += len(block)
        mono = block.mean(axis=1, dtype=np.float32) if block.shape[1] > 1 else block[:, 0]
        mono = np.nan_to_num(mono, nan=0.0, posinf=1.0, neginf=-1.0)  # float files can hold NaN/inf
        yield mono if stream is None else stream.resample_chunk(np.ascontiguousarray(mono))
    if stream is not None:
        yield stream.resample_chunk(np.zeros(0, np.float32), last=True)
    if read == 0:
        raise BadMedia(path, "no audio samples could be decoded")


def _resample(x: np.ndarray, in_rate: int, out_rate: int) -> np.ndarray:
    if in_rate == out_rate:
        return x.astype(np.float32, copy=False)
    import soxr

    return soxr.resample(x, in_rate, out_rate, quality="HQ").astype(np.float32, copy=False)


def _as_float(x: np.ndarray) -> np.ndarray:
    if np.issubdtype(x.dtype, np.integer):
        return (x / float(np.iinfo(x.dtype).max + 1)).astype(np.float32)
    return x.astype(np.float32, copy=False)


# -- windowing --------------------------------------------------------------------------------------
def _windows(blocks: Iterable[np.ndarray], rate: int, window_s: float, hop_s: float) -> Iterator[Window]:
    """Cut a stream of mono blocks into overlapping windows, holding at most one window plus one block.

    Windows start every hop; a file shorter than one window is one short window (the model pads it);
    a tail that reaches past the last full window becomes one more, shorter window.
    """
    if not 0 < hop_s <= window_s:
        raise ValueError(f"need 0 < hop ({hop_s}) <= window ({window_s})")
    win, hop = max(int(round(window_s * rate)), 1), max(int(round(hop_s * rate)), 1)
    buf = np.zeros(0, np.float32)
    start = covered = 0  # sample index of buf[0]; end of the last window emitted
    for block in blocks:
        buf = np.concatenate([buf, block]) if len(buf) else block
        while len(buf) >= win:
            yield Window(start / rate, buf[:win].copy())
            covered = start + win
            buf, start = buf[hop:], start + hop
    if len(buf) and start + len(buf) > covered:
        yield Window(start / rate, buf.copy())
