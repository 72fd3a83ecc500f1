"""The JSON a program gets from the web API (Gradio endpoints and /api/v1 alike).

gradio_client treats any dict with a "path" key as a file to download: it would fetch the original (which
the server refuses to send) and hand back a temp-file path instead of the result. So an answer names the
file under "file", never "path"; everything else (scores, metadata, the best offset of a sound) stays.
"""

from __future__ import annotations

from typing import Any


def api_record(record: dict[str, Any]) -> dict[str, Any]:
    out = {("file" if k == "path" else k): v for k, v in record.items()}
    return out
