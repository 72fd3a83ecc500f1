"""A video moment as an example (mood search, boards): what it shows and what it sounds like, as two query
parts, so it reaches photos, sounds and videos alike.

A moment is named as `FILE@SECONDS`, by its key `FILE#t=S,E`, or by a video file (its first moment). An
indexed moment is taken from the library. A video that is not indexed (an upload, a clip from elsewhere) is
cut into moments on the spot by the indexer's own shot detector and rules (media/shots.py, the library's
settings), so the same file names the same moment indexed or not; its frame is the moment's middle chosen
frame (the indexer picks the one nearest the moment's mean vector, which needs the model). Its picture
part is the frame that stands for it (for an indexed moment, the thumbnail frame the indexer chose), embedded
by the image model; its sound part is its soundtrack, embedded by the audio model, when the file
has one and the library has an audio model. Each part gets the example's whole weight: the picture part
ranks the picture-side tables (photos, videos' pictures) and the sound part the sound-side ones, so each
kind of table sees the moment at the weight a photo or a sound example would have. (A stored-vector part
would skip re-embedding one frame and a few seconds of sound, but reaches only the moment's own tables.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from mmsearch.encoders.base import Encoder
from mmsearch.errors import BadQuery
from mmsearch.media.audio import stream_spans
from mmsearch.media.shots import MomentRules, moments
from mmsearch.media.timecode import span
from mmsearch.media.video import DecodeLimits, frame_at, is_video_file, iter_frames, probe_video
from mmsearch.query.parts import QueryPart
from mmsearch.store.library import Library
from mmsearch.store.video_table import parse_moment, split_at

FRAME_EDGE = 448  # the query frame: at least the image model's input size


def names_video(value: str) -> bool:
    """FILE@SECONDS, a moment key or a video file name."""
    found = parse_moment(value)
    file = found[0] if found else split_at(value)[0]
    return is_video_file(file)


def moment_row(library: Library, value: str) -> dict:
    """The indexed moment `value` names, from the picture side where it is indexed (it has the frame)."""
    rows = [row for table in library.tables("video") if (row := table.like_row(value)) is not None]
    rows.sort(key=lambda r: r.get("frame_s") is None)
    if not rows:
        raise BadQuery(f"video {value} is not in the library; index its folder first (a moment is FILE@SECONDS)")
    return rows[0]


def file_moment(value: str, rules: MomentRules = MomentRules(), limits: DecodeLimits = DecodeLimits()) -> dict:
    """The moment `value` names in a video file that is not indexed, found as the indexer would find it: the
    moment holding SECONDS (the last one when SECONDS is past the end), or the first. Only the frames up to
    that moment are decoded."""
    key = parse_moment(value)
    file, at = (key[0], key[1]) if key else split_at(value)
    if not Path(file).is_file():
        raise BadQuery(f"video {value} is not in the library and there is no such file; give a video file, "
                       "FILE@SECONDS, or index its folder first")
    info = probe_video(file, limits.max_pixels)
    chosen = None
    for m in moments(iter_frames(file, limits), info.duration_s, rules):
        chosen = m
        if at is None or at < m.end_s:
            break
    if chosen is None or not chosen.frames:
        raise BadQuery(f"video {file}: no frames could be decoded to stand for a moment")
    frame = chosen.frames[len(chosen.frames) // 2]
    return {"file": file, "start_s": chosen.start_s, "end_s": chosen.end_s, "frame_s": frame.time_s,
            "channels": info.audio_channels}


def moment_parts(library: Library, encoders: Sequence[Encoder], value: str, weight: float = 1.0,
                 rules: MomentRules = MomentRules(), limits: DecodeLimits = DecodeLimits()) -> list[QueryPart]:
    try:
        row = moment_row(library, value)
    except BadQuery:
        row = file_moment(value, rules, limits)  # not indexed: the file itself, as the indexer would cut it
    file, start, end = row["file"], float(row["start_s"]), float(row["end_s"])
    label = f"moment:{Path(file).name}@{span(start, end)}"
    parts = [QueryPart("image", frame_at(file, float(row.get("frame_s") or start), FRAME_EDGE), weight,
                       label=f"{label} picture")]
    hearing = next((e for e in encoders if e.supports("audio")), None)
    if hearing is not None and (row.get("channels") or 0) > 0:
        rate = hearing.audio_rate()
        sound = next((samples for _, samples in stream_spans(file, rate, [(start, end)])), None)
        if sound is not None and len(sound):
            parts.append(QueryPart("audio", (sound, rate), weight, label=f"{label} sound"))
    return parts
