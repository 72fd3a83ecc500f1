"""Why near-duplicate clips are matched by frame hashes lined up in time (workflows/video_dupes.py).

    python bench/bench_video_dupes.py

Writes a 12 s clip (three scikit-image photos, a slow pan across each) and the re-uploads the tests use
(H.264 to VP9, half size, low bitrate, first 3 s cut off, all at once), a video with the same pictures in
another order, one sharing a single scene, and an unrelated one. For each: the pHash bits between frames
that line up, and the score of two matchers: "aligned" (the one used: the share of the clip's frames that
match at the best offset, among those the two overlap at) and "bag" (the share of the clip's frames with a
match anywhere in the video, no times). Prints a Markdown table.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mmsearch.workflows.dupes import popcount  # noqa: E402
from mmsearch.workflows.video_dupes import FRAME_CUT, align, fingerprint  # noqa: E402
from tests.video_support import panning, reencode  # noqa: E402

VARIANTS = {"vp9.webm": {}, "half.mp4": {"scale": 0.5}, "low-bitrate.mp4": {"bit_rate": 60_000},
            "trimmed-3s.mp4": {"trim_s": 3.0}, "all-three.webm": {"scale": 0.5, "trim_s": 2.3, "bit_rate": 80_000}}
OTHERS = {"reordered.mp4": ["rocket", "astronaut", "coffee"], "one-shared-scene.mp4": ["chelsea", "coffee", "camera"],
          "unrelated.mp4": ["chelsea", "camera", "immunohistochemistry"]}


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        clip_path = panning(d / "clip.mp4", ["astronaut", "coffee", "rocket"])
        files = {n: reencode(clip_path, d / n, **how) for n, how in VARIANTS.items()}
        files.update({n: panning(d / n, photos) for n, photos in OTHERS.items()})
        clip = fingerprint(str(clip_path))
        print("| video | kind | nearest-frame bits (median / max) | aligned score (offset s) | coverage | bag score |")
        print("|---|---|---|---|---|---|")
        for name, path in files.items():
            fp = fingerprint(str(path))
            bits = popcount(clip.hashes[:, None] ^ fp.hashes[None, :]).min(axis=1)
            found = align(clip, fp)
            bag = float((bits <= FRAME_CUT).mean())
            kind = "copy" if name in VARIANTS else "re-edit (8 s of the clip in one piece)" \
                if name == "reordered.mp4" else "other"
            aligned = f"{found.score:.3f} ({found.offset_s:g})" if found else "0 (-)"
            cover = f"{found.coverage:.3f}" if found else "0"
            print(f"| {name} | {kind} | {int(np.median(bits))} / {int(bits.max())} | {aligned} | {cover} | {bag:.3f} |")


if __name__ == "__main__":
    main()
