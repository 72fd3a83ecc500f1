"""Image decoding with the limits a folder of arbitrary files needs.

Safe to call from many threads at once (ingest workers, web requests, thumbnail rendering): it never
touches process-wide state per call. Pillow's own bomb limit and the warning filters are set once, here
at import; each call applies its own `max_pixels` with an explicit check on the header's size, before
any pixel is decoded. (`warnings.catch_warnings()` per call, as before, swaps the process's filter list
under the other threads' feet: the Python docs call it not thread-safe.)
"""

from __future__ import annotations

import io
import struct
import threading
import warnings
from dataclasses import dataclass

from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from mmsearch.errors import BadMedia

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".jpe", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"})
HEIC_EXTENSIONS = frozenset({".heic", ".heif"})

# Truncated files raise instead of decoding half an image silently.
ImageFile.LOAD_TRUNCATED_IMAGES = False

DEFAULT_MAX_PIXELS = 178_956_970  # Settings.max_image_pixels' default: 2x Pillow's own
# Pillow checks its limit inside Image.open, before our check can run; kept at or above every limit we
# are asked for, so ours (with its message naming the limit) is the one that binds. Pillow still refuses
# outright above twice its limit. Raised, never lowered, and only when a caller asks for more.
Image.MAX_IMAGE_PIXELS = max(Image.MAX_IMAGE_PIXELS or 0, DEFAULT_MAX_PIXELS)
_LIMIT_LOCK = threading.Lock()
# Once, for the whole process: images between Pillow's limit and ours are refused by our check anyway,
# and a palette image with transparency is flattened by us (`flatten`), so neither warning tells anyone
# anything; printed, they interleave with progress bars hundreds of times.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
warnings.filterwarnings("ignore", message="Palette images with Transparency", category=UserWarning)

WHITE = (255, 255, 255)


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
    image: Image.Image  # RGB (transparency over white), EXIF-rotated, possibly at reduced (draft) scale
    width: int  # full-resolution size as stored in the file
    height: int
    format: str


def _allow(max_pixels: int) -> None:
    if Image.MAX_IMAGE_PIXELS is not None and Image.MAX_IMAGE_PIXELS < max_pixels:
        with _LIMIT_LOCK:  # only a caller asking for more than any before writes, once
            if Image.MAX_IMAGE_PIXELS is not None and Image.MAX_IMAGE_PIXELS < max_pixels:
                Image.MAX_IMAGE_PIXELS = max_pixels


def flatten(image: Image.Image) -> Image.Image:
    """RGB as a browser shows the image: transparent parts (RGBA, LA, PA, a palette or grey image with a
    transparent colour) over white, not over the black that a plain convert("RGB") leaves."""
    if not image.has_transparency_data:
        return image if image.mode == "RGB" else image.convert("RGB")
    rgba = image.convert("RGBA")
    page = Image.new("RGBA", rgba.size, WHITE + (255,))
    page.alpha_composite(rgba)
    return page.convert("RGB")


def decode_image(
    data: bytes, path: str, max_pixels: int, draft_size: int | None = None
) -> DecodedImage:
    """Decode bytes into an RGB image; raise BadMedia naming the file and the reason."""
    if not data:
        raise BadMedia(path, "empty file (0 bytes)")
    _allow(max_pixels)
    try:
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
        return DecodedImage(flatten(img), width, height, fmt)
    except BadMedia:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise BadMedia(path, f"decompression bomb refused ({exc})") from None
    except UnidentifiedImageError:
        raise BadMedia(path, "not a readable image (unknown or corrupt format)") from None
    except (OSError, SyntaxError, ValueError, EOFError, TypeError, IndexError, KeyError, struct.error) as exc:
        raise BadMedia(path, f"corrupt or truncated image ({exc})") from None
    except MemoryError:
        raise BadMedia(path, "image too large to decode") from None
    except Exception as exc:  # noqa: BLE001 - a hostile file may break a decoder any way; skip it, never stop
        raise BadMedia(path, f"corrupt image ({type(exc).__name__}: {exc})") from None
