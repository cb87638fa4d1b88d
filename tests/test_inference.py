import numpy as np
import pytest
import torch
from PIL import Image

from pix2pix import Translator
from pix2pix.checkpoint import PretrainedInfo, save_pretrained
from pix2pix.config import ModelConfig
from pix2pix.inference.translator import pad_to_multiple
from pix2pix.models import build_generator, check_model


@pytest.fixture
def model_dir(tmp_path):
    cfg = ModelConfig(generator="unet_128", base_channels=8)
    g = build_generator(cfg)
    g.train()
    g(torch.randn(2, 3, 128, 128))  # non-trivial running statistics
    return save_pretrained(g, PretrainedInfo(model=cfg), tmp_path / "model")


@pytest.mark.parametrize("size", [(128, 128), (200, 77), (300, 129), (5, 9)])
def test_any_size_comes_back_the_same_size(model_dir, size):
    t = Translator.from_pretrained(model_dir, device="cpu")
    out = t(Image.new("RGB", size, (120, 30, 200)))
    assert isinstance(out, Image.Image) and out.size == size and out.mode == "RGB"


def test_padding_does_not_change_the_image_area(model_dir):
    """Translating a 128px crop equals the top-left of translating it padded into a larger canvas? No:
    the U-Net sees context; but an image already at the multiple must be untouched by padding."""
    x = torch.rand(1, 3, 128, 256) * 2 - 1
    padded, hw = pad_to_multiple(x, 128)
    assert torch.equal(padded, x) and hw == (128, 256)
    p2, hw2 = pad_to_multiple(x[:, :, :100, :200], 128)
    assert p2.shape[-2:] == (128, 256) and hw2 == (100, 200)
    assert torch.equal(p2[:, :, :100, :200], x[:, :, :100, :200])


def test_deterministic_by_default_and_dropout_mode_varies(model_dir):
    img = Image.fromarray((np.random.default_rng(0).random((128, 128, 3)) * 255).astype(np.uint8))
    det = Translator.from_pretrained(model_dir, device="cpu")
    a, b = np.asarray(det(img)), np.asarray(det(img))
    assert np.array_equal(a, b)
    paper = Translator.from_pretrained(model_dir, device="cpu", dropout=True, batch_stats=True)
    c, d = np.asarray(paper(img)), np.asarray(paper(img))
    assert not np.array_equal(c, d)
    # Paper mode must not corrupt the stored running statistics.
    before = {k: v.clone() for k, v in paper.generator.state_dict().items() if "running" in k}
    paper(img)
    after = paper.generator.state_dict()
    assert all(torch.equal(v, after[k]) for k, v in before.items())


def test_batch_stats_mode_is_per_image(model_dir):
    t = Translator.from_pretrained(model_dir, device="cpu", batch_stats=True)
    x = torch.rand(3, 3, 128, 128) * 2 - 1
    together = t.translate_tensor(x)
    alone = torch.cat([t.translate_tensor(x[i:i + 1]) for i in range(3)])
    assert torch.allclose(together, alone, atol=1e-6)


def test_a_model_saved_with_batch_statistics_tests_with_them(tmp_path):
    import copy
    import dataclasses

    torch.manual_seed(0)
    cfg = ModelConfig(generator="unet_128", base_channels=8, test_statistics="batch")
    g = build_generator(cfg)
    g.train()
    g(torch.randn(2, 3, 128, 128) * 0.5 + 0.3)  # running statistics unlike any test image's
    g.eval()
    folder = save_pretrained(g, PretrainedInfo(model=cfg), tmp_path / "model")
    x = torch.rand(3, 3, 128, 128, generator=torch.Generator().manual_seed(1)) * 2 - 1
    own = copy.deepcopy(g)
    for m in own.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.train()
            m.momentum = 0.0
    with torch.no_grad():
        alone = torch.cat([own(x[i:i + 1]) for i in range(3)])  # batch norm in train mode, one image each
        running = g(x)
    assert (alone - running).abs().mean() > 0.05
    t = Translator.from_pretrained(folder, device="cpu")
    assert t.batch_stats and (t.translate_tensor(x) - alone).abs().max() < 1e-5
    off = Translator.from_pretrained(folder, device="cpu", batch_stats=False)
    assert not off.batch_stats and off.info.model.test_statistics == "running"
    assert (off.translate_tensor(x) - running).abs().max() < 1e-5
    # The caller's generator is left as it was (validation hands the training generator over).
    norms = [n for n, m in g.named_modules() if isinstance(m, torch.nn.BatchNorm2d)]
    Translator(g, PretrainedInfo(model=cfg))
    assert len(norms) > 5 and norms == [n for n, m in g.named_modules() if isinstance(m, torch.nn.BatchNorm2d)]
    with pytest.raises(ValueError, match="model.test_statistics='images' is not valid"):
        check_model(dataclasses.replace(cfg, test_statistics="images"))


def test_gray_and_rgba_inputs(model_dir):
    t = Translator.from_pretrained(model_dir, device="cpu")
    assert t(Image.new("L", (64, 40), 128)).mode == "RGB"
    rgba = Image.new("RGBA", (64, 40), (10, 200, 30, 255))
    rgba.putpixel((0, 0), (0, 0, 0, 0))
    out = t(rgba)
    assert out.mode == "RGBA" and out.getpixel((0, 0))[3] == 0 and out.getpixel((5, 5))[3] == 255


def test_tensor_batches(model_dir):
    t = Translator.from_pretrained(model_dir, device="cpu")
    y = t.translate_tensor(torch.zeros(4, 3, 130, 70))
    assert y.shape == (4, 3, 130, 70) and y.abs().max() <= 1
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        t.translate_tensor(torch.zeros(1, 1, 8, 8))


def test_translator_output_matches_generator(model_dir):
    t = Translator.from_pretrained(model_dir, device="cpu")
    x = torch.rand(1, 3, 128, 128) * 2 - 1
    with torch.no_grad():
        ref = t.generator.eval()(x)
    assert torch.equal(t.translate_tensor(x), ref)
