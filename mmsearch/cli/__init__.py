"""The `mmsearch` command line: one module per verb group, shared helpers in common.py.

Domain errors become one-line messages at this edge, never tracebacks; heavy libraries are imported
inside the verbs, so `mmsearch --help` is quick.
"""

from mmsearch.cli.root import cli, main

__all__ = ["cli", "main"]
