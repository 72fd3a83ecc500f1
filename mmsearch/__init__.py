"""mmsearch: multimodal search over photo, product and sound libraries."""

__version__ = "0.1.0"
