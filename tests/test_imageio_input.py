"""Image input shared by training, translation and the data tools: every odd file gives a defined
result or an ImageReadError naming the file. Content comes from real photos (scikit-image wheel)."""
import struct
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps
from skimage import data

from pix2pix.util import imageio
from pix2pix.util.imageio import ImageReadError, image_size, read_image, to_channels


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """A real RGB photo crop, (96, 128, 3) uint8: not symmetric, so any flip or turn shows."""
    return data.coffee()[100:196, 200:328].copy()


def test_palette_with_and_without_transparency(tmp_path, photo):
    pal = Image.fromarray(photo).quantize(colors=64)
    pal.save(tmp_path / "p.png")
    arr = read_image(tmp_path / "p.png")
    assert arr.shape == (96, 128, 3)
    assert np.array_equal((arr * 255 + 0.5).astype(np.uint8), np.asarray(pal.convert("RGB")))
    pal.save(tmp_path / "pt.png", transparency=0)  # palette entry 0 becomes transparent
    arr = read_image(tmp_path / "pt.png")
    idx = np.asarray(pal)
    assert arr.shape == (96, 128, 4)
    assert np.all(arr[idx == 0, 3] == 0) and np.all(arr[idx != 0, 3] == 1)


def test_rgba_and_la_keep_alpha_and_composite_on_white(tmp_path, photo):
    alpha = np.tile(np.linspace(0, 255, 128).astype(np.uint8), (96, 1))
    Image.fromarray(np.dstack([photo, alpha]), "RGBA").save(tmp_path / "a.png")
    rgba = read_image(tmp_path / "a.png")
    assert rgba.shape == (96, 128, 4) and np.allclose(rgba[:, :, 3] * 255, alpha)
    rgb = to_channels(rgba, 3)
    assert np.allclose(rgb[:, 0], 1.0)  # alpha 0: white
    assert np.allclose(rgb[:, -1], photo[:, -1] / 255, atol=1e-6)  # alpha 1: the photo
    gray = np.asarray(Image.fromarray(photo).convert("L"))
    Image.fromarray(np.dstack([gray, alpha]), "LA").save(tmp_path / "la.png")
    la = read_image(tmp_path / "la.png")
    assert la.shape == (96, 128, 2)
    assert to_channels(la, 1).shape == (96, 128, 1) and to_channels(la, 3).shape == (96, 128, 3)


@pytest.mark.parametrize("ext", ["jpg", "tif"])
def test_cmyk_becomes_rgb(tmp_path, photo, ext):
    cmyk = Image.fromarray(photo).convert("CMYK")
    cmyk.save(tmp_path / f"c.{ext}", quality=100)
    arr = read_image(tmp_path / f"c.{ext}")
    assert arr.shape == (96, 128, 3)
    tol = 0.5 / 255 if ext == "tif" else 12 / 255  # TIFF is lossless; JPEG is not
    assert np.abs(arr - np.asarray(cmyk.convert("RGB")) / 255).mean() < tol


def test_sixteen_bit_gray_and_colour_keep_their_precision(tmp_path, photo):
    rng = np.random.default_rng(0)
    deep = (photo.astype(np.uint16) * 257 + rng.integers(0, 257, photo.shape)).astype(np.uint16)
    cv2.imwrite(str(tmp_path / "rgb16.png"), deep[:, :, ::-1])  # OpenCV writes BGR
    cv2.imwrite(str(tmp_path / "rgb16.tif"), deep[:, :, ::-1])
    cv2.imwrite(str(tmp_path / "g16.tif"), deep[:, :, 0])
    for name in ("rgb16.png", "rgb16.tif"):
        arr = read_image(tmp_path / name)
        assert arr.shape == (96, 128, 3)
        # 8 bits would be off by up to 256 levels; the 16 bits come back exactly.
        assert np.abs(arr * 65535 - deep).max() < 0.02, name
    g = read_image(tmp_path / "g16.tif")
    assert g.shape == (96, 128, 1) and np.abs(g[:, :, 0] * 65535 - deep[:, :, 0]).max() < 0.02


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_matches_pil(tmp_path, photo, orientation):
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(photo).save(tmp_path / "o.png", exif=exif)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(tmp_path / "o.png")))
    arr = read_image(tmp_path / "o.png")
    assert np.array_equal((arr * 255 + 0.5).astype(np.uint8), expected)
    assert image_size(tmp_path / "o.png") == (expected.shape[1], expected.shape[0])


@pytest.mark.parametrize("orientation", [3, 6, 7])
def test_exif_orientation_of_sixteen_bit_colour(tmp_path, photo, orientation):
    """16-bit colour goes through OpenCV, which ignores EXIF; the turn must still happen."""
    deep = photo.astype(np.uint16) * 257
    path = tmp_path / "o16.png"
    cv2.imwrite(str(path), deep[:, :, ::-1])
    exif = Image.Exif()
    exif[0x0112] = orientation
    ref8 = Image.fromarray(photo)
    ref8.save(tmp_path / "ref.png", exif=exif)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(tmp_path / "ref.png")))
    _add_png_exif(path, exif.tobytes())
    arr = read_image(path)
    assert np.array_equal(np.round(arr * 65535 / 257).astype(np.uint8), expected)


def _add_png_exif(path, exif: bytes) -> None:
    """Insert an eXIf chunk after IHDR (OpenCV cannot write one)."""
    raw = path.read_bytes()
    ihdr_end = 8 + 4 + 4 + 13 + 4
    chunk = struct.pack(">I", len(exif)) + b"eXIf" + exif + struct.pack(">I", zlib.crc32(b"eXIf" + exif))
    path.write_bytes(raw[:ihdr_end] + chunk + raw[ihdr_end:])


@pytest.mark.parametrize("ext", ["png", "jpg"])
def test_truncated_files_are_named(tmp_path, photo, ext):
    path = tmp_path / f"cut.{ext}"
    Image.fromarray(photo).save(path)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ImageReadError, match=rf"cut\.{ext}: .*truncated"):
        read_image(path)


def test_corrupt_and_foreign_files_are_named(tmp_path, photo):
    Image.fromarray(photo).save(tmp_path / "flip.png")
    raw = bytearray((tmp_path / "flip.png").read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # one bad byte inside the compressed data
    (tmp_path / "flip.png").write_bytes(bytes(raw))
    with pytest.raises(ImageReadError, match=r"flip\.png: .*(truncated or corrupt|CRC|broken)"):
        read_image(tmp_path / "flip.png")
    (tmp_path / "notes.png").write_text("not an image at all")
    with pytest.raises(ImageReadError, match=r"notes\.png: .*convert it to PNG or remove it"):
        read_image(tmp_path / "notes.png")
    with pytest.raises(ImageReadError, match=r"gone\.png: no such file"):
        read_image(tmp_path / "gone.png")
    for name in ("empty.png", "empty.npy"):  # an interrupted copy: said as such
        (tmp_path / name).write_bytes(b"")
        with pytest.raises(ImageReadError, match=rf"{name}: empty file \(0 bytes\)"):
            read_image(tmp_path / name)


def _bomb_png(width: int, height: int) -> bytes:
    """A 100-byte PNG that declares a huge image: a decompression bomb's header."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


def test_decompression_bomb_is_refused_before_decoding(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(_bomb_png(100_000, 100_000))  # 10 G pixels
    for fn in (read_image, image_size):
        with pytest.raises(ImageReadError, match=r"bomb\.png: its header declares 10,000,000,000 pixels, "
                                                 r"over the 178,956,970 pixel limit"):
            fn(path)


def test_pixel_limit_applies_to_real_images(tmp_path, photo, monkeypatch):
    Image.fromarray(photo).save(tmp_path / "p.png")
    monkeypatch.setattr(imageio, "MAX_PIXELS", 96 * 128 - 1)
    with pytest.raises(ImageReadError, match=r"p\.png: 128x96 = 12,288 pixels, over the 12,287 pixel limit"):
        read_image(tmp_path / "p.png")
    monkeypatch.setattr(imageio, "MAX_PIXELS", 96 * 128)
    assert read_image(tmp_path / "p.png").shape == (96, 128, 3)


def test_shrink_to_decodes_jpeg_at_reduced_scale(tmp_path):
    big = data.astronaut()  # 512 x 512
    Image.fromarray(big).save(tmp_path / "a.jpg", quality=95)
    full = read_image(tmp_path / "a.jpg")
    small = read_image(tmp_path / "a.jpg", shrink_to=128)
    assert full.shape == (512, 512, 3) and small.shape == (128, 128, 3)
    # DCT scaling is an area average: it matches the full decode shrunk by 4x4 means.
    means = full.reshape(128, 4, 128, 4, 3).mean(axis=(1, 3))
    assert np.abs(small - means).mean() < 0.01
    assert read_image(tmp_path / "a.jpg", shrink_to=300).shape == (512, 512, 3)  # never below


def test_rgbx_padding_is_not_taken_for_alpha():
    """PIL's RGBX (e.g. screen grabs) pads each pixel with a byte that is often 0: read as alpha,
    the image would composite to white."""
    from pix2pix.util.imageio import pil_to_array

    arr = pil_to_array(Image.new("RGBX", (4, 3), (10, 20, 30, 0)))
    assert arr.shape == (3, 4, 3)
    assert np.allclose(arr[0, 0], np.array([10, 20, 30]) / 255.0)
