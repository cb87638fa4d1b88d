"""models.resize_conv: the decoders' resize-conv layer computes nearest 2x upsampling + a 3x3
convolution, and trains its 3x3 weights with their exact gradients, in either of its two forms."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from pix2pix.config import ModelConfig
from pix2pix.models import build_generator
from pix2pix.models.resize_conv import ResizeConv2d, transposed_kernel


def _reference(layer: ResizeConv2d, x: torch.Tensor) -> torch.Tensor:
    return F.conv2d(F.interpolate(x, scale_factor=2, mode="nearest"), layer.weight, layer.bias, padding=1)


@pytest.mark.parametrize("transposed", [True, False])
@pytest.mark.parametrize("size", [(6, 10), (1, 1), (5, 3)])
def test_both_forms_compute_upsample_then_conv_and_its_gradients(transposed, size, monkeypatch):
    # Borders included: odd and 1-pixel sides, where every output touches the zero padding.
    monkeypatch.setattr(ResizeConv2d, "transposed_min_pixels", 0 if transposed else 10**9)
    torch.manual_seed(0)
    layer = ResizeConv2d(5, 7)
    x = torch.randn(2, 5, *size, requires_grad=True)
    probe = torch.randn(2, 7, 2 * size[0], 2 * size[1])

    got = layer(x)
    assert got.shape == (2, 7, 2 * size[0], 2 * size[1])
    grads = torch.autograd.grad((got * probe).sum(), (x, layer.weight, layer.bias))
    want = _reference(layer, x)
    want_grads = torch.autograd.grad((want * probe).sum(), (x, layer.weight, layer.bias))
    assert torch.allclose(got, want, atol=1e-5), (got - want).abs().max()
    for g, w in zip(grads, want_grads):
        assert torch.allclose(g, w, atol=1e-4), (g - w).abs().max()


def test_large_inputs_take_the_transposed_form_and_small_ones_the_written_one(monkeypatch):
    calls: list[str] = []
    real_t, real_c = F.conv_transpose2d, F.conv2d
    monkeypatch.setattr(F, "conv_transpose2d", lambda *a, **k: calls.append("transposed") or real_t(*a, **k))
    monkeypatch.setattr(F, "conv2d", lambda *a, **k: calls.append("written") or real_c(*a, **k))
    layer = ResizeConv2d(3, 4)
    n = ResizeConv2d.transposed_min_pixels
    layer(torch.randn(1, 3, n, 1))
    layer(torch.randn(1, 3, n - 1, 1))
    assert calls == ["transposed", "written"]


def test_the_transposed_kernel_sums_the_3x3_taps():
    w = torch.randn(7, 5, 3, 3)
    k = transposed_kernel(w)
    assert k.shape == (5, 7, 4, 4)
    assert torch.equal(k[:, :, 0, 0], w[:, :, 2, 2].T)  # tap 0 of each axis is w2 alone
    assert torch.equal(k[:, :, 3, 3], w[:, :, 0, 0].T)  # tap 3 is w0 alone
    assert torch.allclose(k[:, :, 1, 1], (w[:, :, 1:, 1:].sum((2, 3))).T)  # tap 1: w1 + w2 on both axes


@pytest.mark.parametrize("generator, keys", [
    ("unet_128", {"up.0.conv.weight", "up.0.conv.bias", "up.1.conv.weight"}),
    ("resnet_6blocks", {"up.1.weight", "up.5.weight"}),
])
def test_weight_names_are_those_of_the_upsample_and_conv_layout(generator, keys):
    # Checkpoints saved before the decoder held one layer (Upsample, then Conv2d) still load.
    g = build_generator(ModelConfig(generator=generator, base_channels=8, upsample="resize"))
    state = g.state_dict()
    assert keys <= set(state)
    assert all(state[k].shape[-2:] == (3, 3) for k in keys if k.endswith("weight"))
    assert sum(isinstance(m, ResizeConv2d) for m in g.modules()) == (7 if generator == "unet_128" else 2)
