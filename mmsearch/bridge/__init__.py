"""The bridge between the audio (CLAP) space and the image (CLIP) space, through shared text anchors."""

from mmsearch.bridge.anchors import AnchorBridge, bridge_path, load_vocabulary
from mmsearch.bridge.provider import BridgeProjector, BridgeProvider

__all__ = ["AnchorBridge", "BridgeProjector", "BridgeProvider", "bridge_path", "load_vocabulary"]
