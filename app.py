"""Entry point for `python app.py` and for tools that import `demo` (e.g. `gradio app.py` reload mode).

Building the demo loads no model weights; the encoder loads on the first query.
"""

from mmsearch.settings import Settings
from mmsearch.ui.app import build_demo, launch

settings = Settings()
demo = build_demo(settings)

if __name__ == "__main__":
    launch(settings, demo=demo)  # settings.host:settings.port, 127.0.0.1:7860 unless configured
