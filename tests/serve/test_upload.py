"""Upload decoding: formats by content, EXIF orientation, precision, limits before decoding."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from pix2pix.serve import ApiError, Limits, decode_image, sniff_format


def encode(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "BMP", "TIFF"])
def test_formats_are_recognised_by_content(fmt):
    data = encode(Image.new("RGB", (40, 30), (10, 200, 30)), fmt)
    assert sniff_format(data) == fmt
    arr = decode_image(data, Limits())
    assert arr.shape == (30, 40, 3) and arr.dtype == np.float32
    assert np.allclose(arr[15, 20], [10 / 255, 200 / 255, 30 / 255], atol=8 / 255)


@pytest.mark.parametrize("data", [b"GIF89a" + bytes(32), b"\x00" * 64, b"<svg xmlns='...'/>", b"BM"])
def test_other_content_is_refused_with_415(data):
    with pytest.raises(ApiError) as err:
        decode_image(data, Limits())
    assert err.value.status == 415 and err.value.code == "unsupported_format"


def test_exif_orientation_is_applied():
    im = Image.new("RGB", (60, 20), (255, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated 90 degrees: shown 20 wide, 60 tall
    arr = decode_image(encode(im, "JPEG", exif=exif), Limits())
    assert arr.shape == (60, 20, 3)


def test_sixteen_bit_png_keeps_its_precision():
    ramp = (np.arange(256 * 4, dtype=np.uint16).reshape(4, 256) * 64).astype(np.uint16)
    arr = decode_image(encode(Image.fromarray(ramp), "PNG"), Limits())
    assert arr.shape == (4, 256, 1)
    assert np.allclose(arr[:, :, 0] * 65535, ramp, atol=0.5)


def test_pixel_limit_counts_padding_and_is_checked_before_decoding():
    data = encode(Image.new("L", (100, 1)), "PNG")
    decode_image(data, Limits(max_pixels=100 * 1))  # no padding
    with pytest.raises(ApiError, match="128x128 after padding") as err:
        decode_image(data, Limits(max_pixels=100 * 100), multiple=128)
    assert err.value.status == 413
    # A header claiming 30000 x 30000 with a truncated body: refused from the header alone.
    big = encode(Image.new("1", (30000, 30000)), "PNG")
    with pytest.raises(ApiError) as err:
        decode_image(big[:200], Limits())
    assert err.value.code == "too_many_pixels"


def test_byte_limit_and_limits_validation():
    with pytest.raises(ApiError) as err:
        decode_image(b"\x89PNG\r\n\x1a\n" + bytes(100), Limits(max_bytes=50))
    assert err.value.status == 413 and err.value.code == "too_large"
    with pytest.raises(ValueError, match="max_bytes=0"):
        Limits(max_bytes=0)
