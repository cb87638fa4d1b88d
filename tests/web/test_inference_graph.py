"""inference.inference_graph: the graph the exported page runs (batch norm folded, resize-convs at the
input resolution, as a transposed or a sub-pixel convolution) computes what the trained generator
computes, with fewer multiply-adds."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from pix2pix.config import ModelConfig
from pix2pix.inference.inference_graph import (DEFAULT_RESIZE_CONV, RESIZE_CONV, ResizeConvTranspose, SubPixelConv,
                                            for_inference)
from pix2pix.models import build_generator
from pix2pix.models.registry import GENERATORS


def test_subpixel_conv_equals_nearest_upsample_then_conv():
    torch.manual_seed(0)
    conv = nn.Conv2d(5, 7, 3, 1, 1)
    x = torch.randn(2, 5, 6, 10)
    want = conv(nn.functional.interpolate(x, scale_factor=2, mode="nearest"))
    got = SubPixelConv(conv)(x)
    assert got.shape == want.shape == (2, 7, 12, 20)
    assert torch.allclose(got, want, atol=1e-5), (got - want).abs().max()


@pytest.mark.parametrize("size", [(6, 10), (1, 1), (5, 3)])
def test_transposed_form_equals_nearest_upsample_then_conv(size):
    # Borders included: odd and 1-pixel sides, where every output touches the zero padding.
    torch.manual_seed(3)
    conv = nn.Conv2d(5, 7, 3, 1, 1)
    x = torch.randn(2, 5, *size)
    want = conv(nn.functional.interpolate(x, scale_factor=2, mode="nearest"))
    t = ResizeConvTranspose(conv)
    got = t(x)
    assert got.shape == want.shape == (2, 7, 2 * size[0], 2 * size[1])
    assert torch.allclose(got, want, atol=1e-5), (got - want).abs().max()
    # One node: a stride-2 4x4 transposed convolution whose taps are sums of the 3x3 ones.
    assert isinstance(t, nn.ConvTranspose2d) and t.kernel_size == (4, 4) and t.stride == (2, 2)
    w = conv.weight.detach()
    assert torch.allclose(t.weight[:, :, 0, 0], w[:, :, 2, 2].T)  # tap 0 of each axis is w2 alone
    assert torch.allclose(t.weight[:, :, 3, 3], w[:, :, 0, 0].T)  # tap 3 is w0 alone


def test_the_default_form_is_one_transposed_convolution_per_resize_conv():
    assert DEFAULT_RESIZE_CONV == "transpose"
    g = build_generator(ModelConfig(generator="unet_128", base_channels=8, upsample="resize")).eval()
    fast, counts = for_inference(g)
    assert counts["resize_conv"] == 7
    assert sum(isinstance(m, ResizeConvTranspose) for m in fast.modules()) == 7
    assert not any(isinstance(m, (nn.Upsample, SubPixelConv)) for m in fast.modules())
    with pytest.raises(ValueError, match="unknown resize_conv 'nope'; choose one of subpixel, transpose"):
        for_inference(g, "nope")


@pytest.mark.parametrize("resize_conv", list(RESIZE_CONV))
@pytest.mark.parametrize("upsample", ["resize", "transpose"])
def test_rewritten_generator_matches_the_trained_one(upsample, resize_conv):
    torch.manual_seed(1)
    g = build_generator(ModelConfig(generator="unet_128", base_channels=8, upsample=upsample))
    for m in g.modules():  # non-trivial batch-norm statistics, so folding them matters
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    g.eval()
    fast, counts = for_inference(g, resize_conv)
    assert counts["bn_folded"] == 11
    assert counts["resize_conv"] == (7 if upsample == "resize" else 0)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fast.modules())
    assert any(isinstance(m, nn.BatchNorm2d) for m in g.modules())  # the original is untouched
    x = torch.rand(1, 3, 128, 256) * 2 - 1
    with torch.no_grad():
        assert (fast(x) - g(x)).abs().max() < 1e-4


@pytest.mark.parametrize("generator", list(GENERATORS))
def test_every_generator_keeps_its_function(generator):
    torch.manual_seed(2)
    for upsample in ("resize", "transpose"):
        g = build_generator(ModelConfig(generator=generator, base_channels=4, upsample=upsample))
        for m in g.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
        g.eval()
        fast, _ = for_inference(g)
        x = torch.rand(1, 3, 256, 256) * 2 - 1
        with torch.no_grad():
            assert (fast(x) - g(x)).abs().max() < 1e-4, (generator, upsample)
