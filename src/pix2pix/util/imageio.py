"""Reading and writing images as float arrays, shared by training, translation and the tools.

Arrays are (H, W, C) float32 in [0, 1]; 8- and 16-bit files keep their precision (16-bit colour
PNG/TIFF, which PIL would cut to 8 bits, are decoded with OpenCV). ``.npy`` files hold (H, W, C)
or (H, W) arrays with any channel count (uint8, uint16 or float in [0, 1]; see
:func:`pix2pix.util.ranges.image_array`).
"""
from __future__ import annotations

import math
import re
import warnings
from pathlib import Path
from typing import Optional

import numpy as np
from PIL import Image, ImageOps

# ITU-R 601 luma weights, as PIL's convert('L'): the one RGB -> gray conversion of the package.
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".npy")
# Guard against decompression bombs: a tiny file can declare a huge image. This is PIL's own hard
# limit (2 x Image.MAX_IMAGE_PIXELS, about 13,000 x 13,000 px, 2 GB as float32 RGB); PIL refuses
# larger files at open, so raising it here also needs PIL.Image.MAX_IMAGE_PIXELS raised.
MAX_PIXELS = 178_956_970


class ImageReadError(ValueError):
    """An image could not be read; the message names the file and what to do."""


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def _too_big(path: Path, detail: str) -> ImageReadError:
    return ImageReadError(f"{path}: {detail}, over the {MAX_PIXELS:,} pixel limit (a guard against "
                          f"decompression bombs); downscale or tile it, or raise "
                          f"pix2pix.util.imageio.MAX_PIXELS if you trust the file")


def _open(path: Path) -> Image.Image:
    """Image.open with the pixel limit applied to the header, before anything is decoded."""
    with warnings.catch_warnings():
        # PIL warns from half its hard limit; MAX_PIXELS is the one limit we apply.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            im = Image.open(path)
        except Image.DecompressionBombError as e:
            declared = re.search(r"\((\d+) pixels\)", str(e))
            raise _too_big(path, f"its header declares {int(declared.group(1)):,} pixels" if declared
                           else "its header declares too many pixels") from None
    if im.size[0] * im.size[1] > MAX_PIXELS:
        im.close()
        raise _too_big(path, f"{im.size[0]}x{im.size[1]} = {im.size[0] * im.size[1]:,} pixels")
    return im


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) read from the header only, EXIF rotation applied."""
    path = Path(path)
    if path.suffix.lower() == ".npy":
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
        return int(arr.shape[1]), int(arr.shape[0])
    try:
        with _open(path) as im:
            w, h = im.size
            orientation = im.getexif().get(0x0112, 1)
    except ImageReadError:
        raise
    except Exception as e:  # PIL raises many types for bad files
        raise ImageReadError(f"{path}: cannot read image header ({e}); re-export or remove it") from None
    return (h, w) if orientation in (5, 6, 7, 8) else (w, h)


def is_16bit_colour(im: Image.Image) -> bool:
    """True for 16-bit-per-channel RGB(A) files, which PIL decodes to 8 bits."""
    if im.mode not in ("RGB", "RGBA"):
        return False
    for tile in im.tile:
        rawmode = tile.args if isinstance(tile.args, str) else (tile.args or ("",))[0]
        if isinstance(rawmode, str) and ";16" in rawmode:
            return True
    return False


def list_images(folder: Path) -> list[Path]:
    """Image files directly in ``folder`` (not recursive), sorted; [] if it does not exist."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and is_image_file(p))


def bit_depth(path: Path) -> int:
    """16 for 16-bit PNG/TIFF and uint16 ``.npy``, else 8 (header only)."""
    if path.suffix.lower() == ".npy":
        return 16 if np.load(path, mmap_mode="r", allow_pickle=False).dtype == np.uint16 else 8
    try:
        with Image.open(path) as im:
            return 16 if im.mode.startswith("I") or is_16bit_colour(im) else 8
    except Exception:  # unreadable files are reported by read_image, with the reason
        return 8


def _orient(arr: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (1-8) to an (H, W, C) array, as ImageOps.exif_transpose does."""
    ops = {2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
           5: lambda a: a.transpose(1, 0, 2), 6: lambda a: np.rot90(a, -1),
           7: lambda a: np.rot90(a, 2).transpose(1, 0, 2), 8: lambda a: np.rot90(a, 1)}
    return np.ascontiguousarray(ops[orientation](arr)) if orientation in ops else arr


def _read_16bit_colour(path: Path, orientation: int) -> np.ndarray:
    import cv2  # only for the one case PIL cannot keep

    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if raw is None or raw.dtype != np.uint16 or raw.ndim != 3 or raw.shape[2] not in (3, 4):
        raise ImageReadError(f"{path}: cannot decode this 16-bit colour image (truncated or corrupt?); "
                             f"re-export it as 16-bit PNG or TIFF")
    rgb = raw[:, :, [2, 1, 0, 3][:raw.shape[2]]]  # OpenCV gives BGR(A)
    return _orient(rgb.astype(np.float32) / 65535.0, orientation)


def pil_to_array(im: Image.Image) -> np.ndarray:
    """PIL image of any mode -> (H, W, C) float32 in [0, 1], pixels as stored (no EXIF rotation:
    users' images go through :func:`decode_pil`)."""
    if im.mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    elif im.mode in ("CMYK", "YCbCr", "LAB", "HSV", "RGBX"):  # RGBX: the 4th byte is padding, not alpha
        im = im.convert("RGB")
    elif im.mode == "1":
        im = im.convert("L")
    elif im.mode == "PA":
        im = im.convert("RGBA")
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        arr = np.asarray(im, dtype=np.uint16).astype(np.float32) / 65535.0
    elif im.mode == "I":
        raw = np.asarray(im)
        # 16-bit PNGs open as mode I; values above 65535 would be a true 32-bit image.
        scale = 65535.0 if raw.max(initial=0) <= 65535 else float(raw.max())
        arr = raw.astype(np.float32) / scale
    elif im.mode == "F":
        arr = np.clip(np.asarray(im, dtype=np.float32), 0.0, 1.0)
    else:
        arr = np.asarray(im, dtype=np.float32) / 255.0
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return np.ascontiguousarray(arr)


def _npy_to_array(path: Path) -> np.ndarray:
    arr = np.load(path, allow_pickle=False)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3:
        raise ImageReadError(f"{path}: array of shape {arr.shape} is not (H, W) or (H, W, C)")
    from .ranges import image_array  # the one rule for arrays, files included

    try:
        return image_array(arr, str(path))
    except ValueError as e:
        raise ImageReadError(str(e)) from None


def decode_pil(im: Image.Image) -> np.ndarray:
    """Fully decode an opened PIL image to (H, W, C) float32 in [0, 1], EXIF orientation applied."""
    im.load()
    return pil_to_array(ImageOps.exif_transpose(im))


def read_image(path: str | Path, *, shrink_to: Optional[int] = None) -> np.ndarray:
    """Decode ``path`` fully to (H, W, C) float32 in [0, 1], EXIF orientation applied.

    ``shrink_to``: a JPEG may be decoded at 1/2, 1/4 or 1/8 scale (DCT scaling, much faster) as
    long as its short side stays at least ``shrink_to`` px; callers that resize anyway use it.
    Raises ImageReadError naming the file for missing, unreadable, truncated or oversized images.
    """
    path = Path(path)
    if not path.is_file():
        raise ImageReadError(f"{path}: no such file")
    if path.stat().st_size == 0:  # an interrupted copy or download; say so, not "cannot identify"
        raise ImageReadError(f"{path}: empty file (0 bytes); copy it again or remove it")
    if path.suffix.lower() == ".npy":
        try:
            return _npy_to_array(path)
        except ImageReadError:
            raise
        except Exception as e:
            raise ImageReadError(f"{path}: cannot read array ({e}); re-save it with numpy.save") from None
    try:
        with _open(path) as im:
            if is_16bit_colour(im):
                return _read_16bit_colour(path, im.getexif().get(0x0112, 1))
            if shrink_to and im.format == "JPEG" and min(im.size) >= 2 * shrink_to:
                scale = min(im.size) / shrink_to
                im.draft(im.mode, (math.ceil(im.size[0] / scale), math.ceil(im.size[1] / scale)))
            return decode_pil(im)
    except ImageReadError:
        raise
    except (OSError, SyntaxError, ValueError) as e:
        msg = str(e)
        hint = "the file is truncated or corrupt; re-export or remove it"
        if "cannot identify" in msg:
            hint = "not an image PIL can read; convert it to PNG or remove it"
        raise ImageReadError(f"{path}: {msg} ({hint})") from None


def to_channels(arr: np.ndarray, channels: int, source: str = "image") -> np.ndarray:
    """Adapt (H, W, C) to ``channels``: gray<->RGB, alpha composited on white, or fail clearly."""
    c = arr.shape[2]
    if c == channels:
        return arr
    if c in (2, 4) and channels in (c - 1, 1, 3):
        # Transparent areas become white (the background of drawings and label maps).
        alpha = arr[:, :, -1:]
        arr = arr[:, :, :-1] * alpha + (1.0 - alpha)
        return to_channels(arr, channels, source)
    if c == 1 and channels == 3:
        return np.repeat(arr, 3, axis=2)
    if c == 3 and channels == 1:
        return (arr @ LUMA)[:, :, None].astype(np.float32)
    if c == 1 and channels == 4:
        return np.concatenate([np.repeat(arr, 3, axis=2), np.ones_like(arr)], axis=2)
    if c == 2 and channels == 4:  # gray + alpha -> RGBA, alpha kept
        return np.concatenate([np.repeat(arr[:, :, :1], 3, axis=2), arr[:, :, 1:]], axis=2)
    if c == 3 and channels == 4:
        return np.concatenate([arr, np.ones_like(arr[:, :, :1])], axis=2)
    raise ValueError(f"{source} has {c} channel(s) but the model expects {channels}; "
                     f"convert the data or set model.in_channels/out_channels to match")


def array_to_pil(arr: np.ndarray, bits: int = 8) -> Image.Image:
    """(H, W, C) float in [0, 1] with C in 1..4 -> PIL image (L, LA, RGB, RGBA; or 16-bit gray)."""
    arr = np.clip(arr, 0.0, 1.0)
    c = arr.shape[2]
    if bits == 16 and c == 1:
        return Image.fromarray((arr[:, :, 0] * 65535.0 + 0.5).astype(np.uint16))
    data = (arr * 255.0 + 0.5).astype(np.uint8)
    if c == 1:
        return Image.fromarray(data[:, :, 0], "L")
    if c == 2:
        return Image.fromarray(data, "LA")
    if c == 3:
        return Image.fromarray(data, "RGB")
    if c == 4:
        return Image.fromarray(data, "RGBA")
    raise ValueError(f"cannot make an image from {c} channels; save it as .npy with save_image")


def save_image(arr: np.ndarray, path: str | Path, *, bits: int = 8, quality: int = 95) -> Path:
    """Write (H, W, C) in [0, 1]: ``.npy`` keeps every channel as float32; image formats take 1 to 4
    channels (16-bit PNG/TIFF when ``bits`` is 16; JPEG without alpha, composited on white)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        np.save(path, np.clip(arr, 0, 1).astype(np.float32))
        return path
    if arr.shape[2] == 2:  # gray + alpha: PIL's LA cannot go everywhere; RGBA can
        arr = to_channels(arr, 4, str(path))
    if suffix in (".jpg", ".jpeg") and arr.shape[2] == 4:
        arr = to_channels(arr, 3, str(path))  # JPEG has no alpha: composite on white
    if bits == 16 and suffix in (".png", ".tif", ".tiff") and arr.shape[2] in (1, 3, 4):
        import cv2

        data = (np.clip(arr, 0, 1) * 65535.0 + 0.5).astype(np.uint16)
        if data.shape[2] >= 3:
            data = data[:, :, [2, 1, 0, 3][:data.shape[2]]]  # OpenCV writes BGR(A)
        if not cv2.imwrite(str(path), data):
            raise OSError(f"{path}: OpenCV could not write this 16-bit image")
        return path
    options: dict = {"quality": quality} if suffix in (".jpg", ".jpeg", ".webp") else {}
    if suffix == ".png":
        options["compress_level"] = 3  # 2.5x faster than PIL's 6 for about 10 % larger files
    if suffix in (".jpg", ".jpeg"):
        options["subsampling"] = 0  # full-resolution colour: 4:2:0 would bleed B's colour into A at the seam
    array_to_pil(arr).save(path, **options)
    return path
