"""models.small_conv: a convolution over a small map as one matrix product computes the same
function and gradients, and only a CPU training step under bf16 autocast takes it."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pix2pix.config import ModelConfig
from pix2pix.models import build_generator
from pix2pix.models import resize_conv, small_conv
from pix2pix.models.small_conv import MATMUL_MAX_PIXELS, SmallMapConv2d, conv2d_as_matmul


@pytest.mark.parametrize("c_in, c_out, side, k, stride, pad, bias", [
    (6, 5, 8, 4, 2, 1, True),    # an encoder level: 4x4 stride 2
    (6, 5, 2, 4, 2, 1, False),   # the bottleneck: 2x2 -> 1x1, all but one tap on the padding
    (4, 7, 3, 3, 1, 1, True),    # a decoder's 3x3 on an odd side
    (3, 2, 5, 1, 1, 0, True),    # 1x1
])
def test_the_matmul_form_is_the_convolution_and_so_are_its_gradients(c_in, c_out, side, k, stride, pad, bias):
    torch.manual_seed(0)
    x = torch.randn(2, c_in, side, side + 1, requires_grad=True)
    w = torch.randn(c_out, c_in, k, k, requires_grad=True)
    b = torch.randn(c_out, requires_grad=True) if bias else None
    got, want = conv2d_as_matmul(x, w, b, stride, pad), F.conv2d(x, w, b, stride, pad)
    assert got.shape == want.shape and got.is_contiguous()
    assert torch.allclose(got, want, atol=1e-5), (got - want).abs().max()
    probe = torch.randn_like(want)
    inputs = (x, w) + ((b,) if bias else ())
    for g, r in zip(torch.autograd.grad((got * probe).sum(), inputs),
                    torch.autograd.grad((want * probe).sum(), inputs)):
        assert torch.allclose(g, r, atol=1e-4), (g - r).abs().max()


def test_under_bf16_autocast_it_returns_what_the_convolution_does():
    torch.manual_seed(0)
    x, w, b = torch.randn(1, 8, 4, 4), torch.randn(6, 8, 4, 4), torch.randn(6)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got, want = conv2d_as_matmul(x, w, b, 2, 1), F.conv2d(x, w, b, 2, 1)
    assert got.dtype == want.dtype == torch.bfloat16
    assert torch.allclose(got.float(), want.float(), rtol=0.02, atol=0.05)


@pytest.fixture
def calls(monkeypatch) -> list[tuple[int, ...]]:
    """The input shapes conv2d_as_matmul is called with, wherever it is called from."""
    seen: list[tuple[int, ...]] = []
    real = small_conv.conv2d_as_matmul

    def spy(x, *args):
        seen.append(tuple(x.shape))
        return real(x, *args)

    monkeypatch.setattr(small_conv, "conv2d_as_matmul", spy)
    monkeypatch.setattr(resize_conv, "conv2d_as_matmul", spy)
    return seen


def test_only_a_bf16_training_step_over_a_small_map_takes_it(calls):
    conv = SmallMapConv2d(8, 8, 4, 2, 1)
    small = torch.randn(1, 8, 16, 16)  # -> 8x8 = 64 output pixels
    assert MATMUL_MAX_PIXELS == 64
    bf16 = torch.autocast("cpu", dtype=torch.bfloat16)
    with bf16:
        conv(small)
    assert calls == [(1, 8, 16, 16)]
    with bf16:
        conv(torch.randn(2, 8, 16, 16))        # 128 output pixels: the convolution
        with torch.no_grad():
            conv(small)                        # no gradients: inference
    conv(small)                                # fp32 (the paper's training): untouched
    conv.eval()
    with bf16:
        conv(small)                            # eval mode: evaluation and export
    assert calls == [(1, 8, 16, 16)]


def test_the_unet_keeps_its_weight_names_and_takes_the_matmul_at_its_inner_levels(calls):
    cfg = ModelConfig(generator="unet_128", base_channels=4, upsample="resize")
    g = build_generator(cfg).train()
    plain = {k: v.shape for k, v in g.state_dict().items()}
    assert "down.6.conv.weight" in plain and isinstance(g.down[6].conv, nn.Conv2d)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        g(torch.randn(1, 3, 128, 128)).float().mean().backward()
    # Encoder: 16->8, 8->4, 4->2, 2->1; decoder: the 3x3 over the upsampled 2x2, 4x4 and 8x8 maps.
    assert sorted(calls) == sorted([(1, 16, 16, 16), (1, 32, 8, 8), (1, 32, 4, 4), (1, 32, 2, 2),
                                    (1, 32, 2, 2), (1, 64, 4, 4), (1, 64, 8, 8)])
    assert all(p.grad is not None for p in g.parameters())


def test_a_compiled_bf16_step_keeps_the_convolution_and_compiles(tmp_path, monkeypatch):
    """Inductor (torch 2.13) could not generate the backward of the matmul form after a nearest
    upsampling in bf16: `pix2pix train --compile default` crashed wherever auto is bf16. Traced by
    torch.compile, the resize-conv's innermost step keeps the convolution; same numbers as eager."""
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path))  # compiled here, not from a cache
    torch.manual_seed(0)
    m = resize_conv.ResizeConv2d(16, 16).train()
    x = torch.randn(1, 16, 1, 1, requires_grad=True)
    grads = []
    for net in (m, torch.compile(m)):
        x.grad, m.weight.grad = None, None
        with torch.autocast("cpu", torch.bfloat16):
            y = net(x)
        (y.float() * torch.arange(y.numel()).view_as(y)).sum().backward()
        grads.append((y.detach().float(), x.grad.clone(), m.weight.grad.clone()))
    torch._dynamo.reset()
    for eager, compiled in zip(*grads):
        assert torch.allclose(eager, compiled, rtol=0.02, atol=0.02 * eager.abs().max()), (eager - compiled).abs().max()
