"""Arrays handed to the public API are read as what they are (issue 20, item 1).

uint8 and uint16 arrays are scaled by their dtype; float arrays must lie in [0, 1] or the call
fails naming the range: never a silently wrong picture.
"""
import numpy as np
import pytest
import torch
from PIL import Image

from pix2pix import Translator
from pix2pix.checkpoint import PretrainedInfo, save_pretrained
from pix2pix.config import ModelConfig
from pix2pix.models import build_generator
from pix2pix.video import translate_frames


@pytest.fixture(scope="module")
def translator(tmp_path_factory):
    torch.manual_seed(0)
    cfg = ModelConfig(generator="unet_128", base_channels=8)
    g = build_generator(cfg)
    g.train()
    g(torch.randn(2, 3, 128, 128))  # non-trivial running statistics
    return Translator.from_pretrained(save_pretrained(g, PretrainedInfo(model=cfg),
                                                      tmp_path_factory.mktemp("m") / "model"), device="cpu")


@pytest.fixture(scope="module")
def photo():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (96, 80, 3), dtype=np.uint8)


def test_uint8_array_gives_the_same_picture_as_the_pil_image(translator, photo):
    from_pil = np.asarray(translator(Image.fromarray(photo)), dtype=np.float32) / 255
    from_u8 = translator(photo)
    assert from_u8.dtype == np.float32 and from_u8.shape == (96, 80, 3)
    assert np.abs(from_u8 - from_pil).mean() < 0.003  # only the output's 8-bit rounding
    assert np.allclose(from_u8, translator(photo.astype(np.float32) / 255), atol=1e-6)


def test_uint16_array_is_scaled_by_65535(translator, photo):
    u16 = photo.astype(np.uint16) * 257  # the same picture in 16 bits
    assert np.allclose(translator(u16), translator(photo), atol=1e-5)


def test_float_array_in_0_255_is_refused_naming_the_range(translator, photo):
    with pytest.raises(ValueError, match=r"from 0 to 255.*\[0, 1\].*uint8"):
        translator(photo.astype(np.float32))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        translator.translate_array(photo.astype(np.float64))
    with pytest.raises(ValueError, match=r"input image 1.*\[0, 1\]"):
        translator.translate_batch([photo, photo.astype(np.float32)])


def test_float_array_in_minus1_1_is_refused_with_the_mapping(translator):
    x = np.linspace(-1, 1, 64 * 64 * 3, dtype=np.float32).reshape(64, 64, 3)
    with pytest.raises(ValueError, match=r"\(arr \+ 1\) / 2"):
        translator(x)


def test_float_rounding_overshoot_is_accepted(translator, photo):
    x = photo.astype(np.float32) / 255
    x[0, 0, 0], x[1, 1, 1] = -1e-4, 1 + 1e-4
    assert translator(x).shape == (96, 80, 3)


def test_gray_and_batch_entries_follow_the_same_rule(translator, photo):
    gray = photo[:, :, 0]
    assert np.allclose(translator(gray), translator(gray.astype(np.float32) / 255), atol=1e-6)
    a, b = translator.translate_batch([photo, photo.astype(np.uint16) * 257])
    assert np.allclose(a, b, atol=1e-5)
    with pytest.raises(ValueError, match="dtype int64"):
        translator(photo.astype(np.int64))


def test_translate_frames_takes_uint8_and_refuses_float_0_255(translator, photo):
    frames = [photo, photo[::-1].copy()]
    outs = [out for _, out in translate_frames(translator, frames, measure=False)]
    assert np.allclose(outs[0], translator(photo), atol=1e-5)
    as_unit = [out for _, out in translate_frames(translator, [f / 255.0 for f in frames], measure=False)]
    assert np.allclose(outs[1], as_unit[1], atol=1e-5)
    with pytest.raises(ValueError, match=r"frame 0 .*\[0, 1\]"):
        list(translate_frames(translator, [photo.astype(np.float32)], measure=False))


def test_npy_file_outside_0_1_is_refused_naming_the_file(tmp_path):
    from pix2pix.util.imageio import ImageReadError, read_image

    np.save(tmp_path / "x.npy", np.full((4, 4, 3), 200.0, np.float32))
    with pytest.raises(ImageReadError, match=r"x\.npy.*\[0, 1\]"):
        read_image(tmp_path / "x.npy")
    np.save(tmp_path / "y.npy", np.full((4, 4), 65535, np.uint16))
    assert read_image(tmp_path / "y.npy").max() == 1.0
