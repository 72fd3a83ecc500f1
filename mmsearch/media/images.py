"""Image decoding with the limits a folder of arbitrary files needs."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from mmsearch.errors import BadMedia

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".jpe", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"})
HEIC_EXTENSIONS = frozenset({".heic", ".heif"})

# Truncated files raise instead of decoding half an image silently.
ImageFile.LOAD_TRUNCATED_IMAGES = False


def _heic_available() -> bool:
    try:
        from pillow_heif import register_heif_opener
    except ImportError:
        return False
    register_heif_opener()
    return True


HEIC_SUPPORTED = _heic_available()


def supported_extensions() -> frozenset[str]:
    return IMAGE_EXTENSIONS | HEIC_EXTENSIONS if HEIC_SUPPORTED else IMAGE_EXTENSIONS


@dataclass
class DecodedImage:
    image: Image.Image  # RGB, EXIF-rotated, possibly decoded at reduced (draft) scale
    width: int  # full-resolution size as stored in the file
    height: int
    format: str


def decode_image(
    data: bytes, path: str, max_pixels: int, draft_size: int | None = None
) -> DecodedImage:
    """Decode bytes into an RGB image; raise BadMedia naming the file and the reason."""
    if not data:
        raise BadMedia(path, "empty file (0 bytes)")
    Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            width, height = img.size
            fmt = img.format or "unknown"
            if width * height > max_pixels:
                raise BadMedia(path, f"{width}x{height} exceeds the {max_pixels}-pixel limit")
            if draft_size and fmt == "JPEG":
                img.draft("RGB", (draft_size, draft_size))
            img.seek(0)  # first frame of animations
            img.load()
            img = ImageOps.exif_transpose(img)
            return DecodedImage(img.convert("RGB"), width, height, fmt)
    except BadMedia:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise BadMedia(path, f"decompression bomb refused ({exc})") from None
    except UnidentifiedImageError:
        raise BadMedia(path, "not a readable image (unknown or corrupt format)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise BadMedia(path, f"corrupt or truncated image ({exc})") from None
    except MemoryError:
        raise BadMedia(path, "image too large to decode") from None
