"""The Gradio web app.

Gradio and the Hugging Face Hub read their telemetry switches when they are first imported, so this
package turns both off (unless the environment already says otherwise) before anything imports them.
"""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
