"""A product photo as the shop keeps it, made with Pillow from what the supplier uploaded.

The upload is untrusted: its kind was recognised from its content (`common.files.sniff_file`)
and Pillow is told to read it as that kind only. Its dimensions are read from the header and an
image over `MAX_PIXELS` is refused before a pixel is decoded (a decompression bomb: a small file
of huge dimensions). What is kept is re-encoded: orientation from EXIF applied, then every piece
of metadata (EXIF with its GPS position, XMP, ICC, comments) left behind, at most `MAX_SIDE`
pixels on the long side, with a `THUMB_SIDE` thumbnail, both WebP (transparency kept). The same
upload always gives the same bytes, so a photo uploaded twice is stored once. The original is
not kept. Pure functions over a file: `catalog.photos` runs them in a worker thread."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps

from common.errors import DomainError, invalid
from common.files import JPEG, MB, PNG, WEBP

MAX_BYTES = 5 * MB
MAX_PIXELS = 40_000_000
MAX_SIDE = 1200
THUMB_SIDE = 400
QUALITY = 82
OUTPUT_TYPE = WEBP
KINDS = {JPEG: "JPEG", PNG: "PNG", WEBP: "WEBP"}  # what a photo may be, as Pillow names the decoder

# Pillow's own bomb check, for any image opened in this process: above this it warns, above
# twice this it refuses to open. `reencode` refuses above it itself, before decoding.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS


@dataclass(frozen=True, slots=True)
class Encoded:
    picture: bytes  # WebP, at most MAX_SIDE on the long side
    thumbnail: bytes  # WebP, at most THUMB_SIDE on the long side
    width: int  # the picture's, after orientation
    height: int


def too_many_pixels(width: int, height: int) -> DomainError:
    return invalid("file", f"the image is {width}×{height} pixels, more than {MAX_PIXELS // 1_000_000} megapixels")


def reencode(path: Path, kind: str) -> Encoded:
    """The photo at `path`, recognised as `kind` (one of KINDS), as the shop keeps it; an image
    Pillow cannot read as that kind, or one over MAX_PIXELS, is `validation_failed` on `file`."""
    if kind not in KINDS:
        raise invalid("file", "a photo must be a JPEG, PNG or WebP image")
    try:
        with Image.open(path, formats=[KINDS[kind]]) as source:
            width, height = source.size  # from the header: nothing is decoded yet
            if width * height > MAX_PIXELS:
                raise too_many_pixels(width, height)
            if source.format == "JPEG":  # decode at 1/2, 1/4 or 1/8 when that still gives MAX_SIDE
                source.draft("RGB", (MAX_SIDE, MAX_SIDE))
            image = _flattened(ImageOps.exif_transpose(source))
    except DomainError:
        raise
    except Image.DecompressionBombError as exc:  # over twice MAX_PIXELS: Pillow refused at open
        raise invalid("file", f"the image is more than {MAX_PIXELS // 1_000_000} megapixels") from exc
    except (OSError, ValueError, SyntaxError, EOFError, TypeError, MemoryError) as exc:
        raise invalid("file", f"the file cannot be read as a {kind.split('/')[1].upper()} image") from exc
    image.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    thumbnail = image.copy()
    thumbnail.thumbnail((THUMB_SIDE, THUMB_SIDE), Image.Resampling.LANCZOS)
    return Encoded(picture=_webp(image), thumbnail=_webp(thumbnail), width=image.width, height=image.height)


def _flattened(image: Image.Image) -> Image.Image:
    """RGB, or RGBA when some pixel is transparent; no metadata carried along."""
    transparent = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):  # 16-bit or float greyscale: scale to 8 bits
        image = image.convert("I").point(lambda v: v * (1 / 256)).convert("L")
    result = image.convert("RGBA") if transparent else image.convert("RGB")
    if transparent and result.getchannel("A").getextrema()[0] == 255:
        result = result.convert("RGB")  # an alpha channel with nothing transparent in it
    result.info = {}
    return result


def _webp(image: Image.Image) -> bytes:
    """WebP without EXIF, XMP or ICC (Pillow writes them only when asked to)."""
    buffer = io.BytesIO()
    image.save(buffer, "WEBP", quality=QUALITY, method=4)
    return buffer.getvalue()
