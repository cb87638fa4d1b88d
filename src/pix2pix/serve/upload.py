"""Uploaded bytes -> a checked image array, or an ApiError that says what is wrong with them.

The format is recognised from the file's first bytes, never from its name or Content-Type (a
browser, curl and a script each label the same PNG differently). Limits apply before decoding:
the byte count while the body arrives, the pixel count from the header, so neither a huge upload
nor a small file that decodes to a huge image costs memory.
"""
from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from typing import Optional

import numpy as np
from PIL import Image

from ..util.imageio import decode_pil
from .errors import ApiError

# PIL format name -> what we tell people.
FORMATS = {"PNG": "PNG", "JPEG": "JPEG", "WEBP": "WebP", "BMP": "BMP", "TIFF": "TIFF"}
ACCEPTED = ", ".join(FORMATS.values())


@dataclass(frozen=True)
class Limits:
    """What one request may send: bytes on the wire, and pixels after padding to the network's
    multiple. Images above the tiling rule's size are translated tile by tile (network memory is
    then per tile), so the pixel limit bounds the image buffers (about 30 bytes a pixel for input,
    output and blending: ~0.75 GB at the default) and the time, not the network's memory."""

    max_bytes: int = 20 * 1024 * 1024
    max_pixels: int = 6144 * 4096  # a 24 Mpx camera photo (6000 x 4000) padded to multiples of 256

    def __post_init__(self) -> None:
        if self.max_bytes < 1 or self.max_pixels < 1:
            raise ValueError(f"limits must be positive, got max_bytes={self.max_bytes}, "
                             f"max_pixels={self.max_pixels}")


def sniff_format(data: bytes) -> Optional[str]:
    """The PIL format name of ``data`` from its signature, or None when it is none we accept."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data.startswith(b"BM") and len(data) >= 26:
        return "BMP"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "TIFF"
    return None


def sniff_container(data: bytes) -> Optional[str]:
    """The file suffix of a clip from its first bytes (never from its name), or None."""
    if data[4:8] == b"ftyp":
        return ".mov" if data[8:12] == b"qt  " else ".mp4"
    if data.startswith(b"\x1aE\xdf\xa3"):
        return ".webm" if b"webm" in data[:64] else ".mkv"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return ".gif"
    if data[:4] == b"RIFF" and data[8:12] == b"AVI ":
        return ".avi"
    return None


def _padded(side: int, multiple: int) -> int:
    return -(-side // multiple) * multiple


def decode_image(data: bytes, limits: Limits, multiple: int = 1) -> np.ndarray:
    """Decode an uploaded image to (H, W, C) float32 in [0, 1], EXIF orientation applied.

    ``multiple`` is the network's padding multiple, for the pixel limit. Raises ApiError: 400 for
    an empty body or a truncated/corrupt file, 413 over the limits, 415 for other formats.
    """
    if not data:
        raise ApiError(400, "empty_body", "the request body is empty; send an image "
                                          f"({ACCEPTED}) as the body or as a multipart file field")
    if len(data) > limits.max_bytes:
        raise ApiError(413, "too_large", f"the upload is {len(data):,} bytes, over the "
                                         f"{limits.max_bytes:,} byte limit")
    fmt = sniff_format(data)
    clip = sniff_container(data) if fmt is None else None
    if clip is not None:
        raise ApiError(415, "unsupported_format",
                       f"the body is a clip ({clip[1:].upper()}), not an image; send clips to "
                       f"POST /api/translate-video, and images ({ACCEPTED}) here")
    if fmt is None:
        raise ApiError(415, "unsupported_format",
                       f"the body is not an image this server reads (it starts with {data[:8]!r}); "
                       f"send {ACCEPTED} (recognised by content, not by name or Content-Type)")
    try:
        with warnings.catch_warnings():
            # Our own pixel limit below is the guard; PIL's bomb warning would only add noise.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=[fmt]) as im:
                w, h = im.size
                padded = _padded(w, multiple) * _padded(h, multiple)
                if w * h == 0 or padded > limits.max_pixels:
                    raise ApiError(413, "too_many_pixels",
                                   f"the image is {w}x{h} pixels ({_padded(w, multiple)}x"
                                   f"{_padded(h, multiple)} after padding to the model's multiple of "
                                   f"{multiple}), over the server's {limits.max_pixels:,} pixel limit "
                                   f"(`pix2pix serve --max-pixels`); downscale or crop it")
                arr = decode_pil(im)
    except ApiError:
        raise
    except Image.DecompressionBombError as e:
        raise ApiError(413, "too_many_pixels", f"the image is too large to decode: {e}") from None
    except Exception as e:  # noqa: BLE001 - PIL raises many types for bad bytes; all are the input's fault
        raise ApiError(400, "corrupt_image",
                       f"the {FORMATS[fmt]} file cannot be decoded ({type(e).__name__}: {e}); "
                       f"it is truncated or corrupt: re-export it") from None
    if arr.shape[2] > 4:
        raise ApiError(415, "unsupported_format", f"the image has {arr.shape[2]} channels; send "
                                                  f"gray, RGB or RGBA")
    return arr
