"""Library chatter off the terminal: Python warnings (Pillow's "Palette images with Transparency",
lancedb deprecations), log lines (open_clip's root-logger warnings, transformers) are collected while a
verb runs and written to a log file in the library afterwards, so the progress bar and mmsearch's own
lines are all the terminal shows.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

MAX_KINDS = 1000  # distinct messages kept; a million identical warnings are one line with a count


class Collected(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.counts: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage().strip().splitlines()[0]  # a warning's first line: where, category, message
        except Exception:  # noqa: BLE001 - a library's odd log record must never stop an index run
            return
        key = f"{record.name}: {text}"
        if key in self.counts or len(self.counts) < MAX_KINDS:
            self.counts[key] += 1

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def write(self, path: Path) -> Path | None:
        """The collected lines, most frequent first; None when there was nothing to say."""
        if not self.counts:
            if path.exists():
                path.unlink()  # a log from an earlier run would be mistaken for this one's
            return None
        path.write_text("".join(f"{n}x {line}\n" for line, n in self.counts.most_common()))
        return path


@contextmanager
def library_noise() -> Iterator[Collected]:
    """Collect warnings and library log lines instead of printing them; restore everything after."""
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")  # read when transformers is first imported
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    handler = Collected()
    root = logging.getLogger()
    # transformers keeps its own stderr handler and does not propagate: quiet it at the source
    loud = {name: logging.getLogger(name) for name in ("transformers", "sentence_transformers")}
    levels = {name: lg.level for name, lg in loud.items()}
    root.addHandler(handler)  # with a handler on root, logging.warning() no longer prints via basicConfig
    logging.captureWarnings(True)  # warnings.warn -> the "py.warnings" logger -> handler
    for lg in loud.values():
        lg.setLevel(logging.ERROR)
    try:
        yield handler
    finally:
        logging.captureWarnings(False)
        root.removeHandler(handler)
        for name, lg in loud.items():
            lg.setLevel(levels[name])
