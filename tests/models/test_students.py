"""Distillation students: every preset builds, keeps shapes and range, exports to ONNX, and its
MACs are counted the way the papers count them."""
import pytest
import torch
from torch import nn

from pix2pix.checkpoint import PretrainedInfo
from pix2pix.config import ModelConfig
from pix2pix.inference.onnx import check_parity, export_onnx
from pix2pix.models import GENERATORS, STUDENTS, build_generator, generator_multiple
from pix2pix.models.profile import profile


@pytest.mark.parametrize("name", sorted(STUDENTS))
def test_student_shapes_and_range(name):
    arch, width = STUDENTS[name]
    assert arch in GENERATORS
    net = build_generator(ModelConfig(generator=arch, base_channels=width)).eval()
    m = generator_multiple(arch)
    x = torch.rand(2, 3, m, 2 * m) * 2 - 1
    with torch.no_grad():
        y = net(x)
    assert y.shape == (2, 3, m, 2 * m)
    assert y.abs().max() <= 1.0
    # A student is smaller than the paper's generator by at least its width ratio squared-ish.
    p = profile(net, size=256)
    assert p.macs < 6.05e9 / 3


# Width does not change the graph, and the two mobile presets differ only in depth (one class):
# unet_128 and unet_256 export in tests/test_export.py, the MobileUNet here (an export takes
# 20-80 s of the suite's budget, so one per network class).
@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("arch", ["mobile_unet_128"])
def test_student_architectures_export_to_onnx(arch, tmp_path):
    """With live (He-scaled) weights, so the parity check compares real signal, not a
    near-constant output."""
    cfg = ModelConfig(generator=arch, base_channels=8)
    g = build_generator(cfg)
    for mod in g.modules():
        if isinstance(mod, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(mod.weight, 0.0, (2.0 / mod.weight[0].numel()) ** 0.5)
    g.eval()
    path = export_onnx(g, PretrainedInfo(model=cfg), tmp_path / "m.onnx")
    m = generator_multiple(arch)
    x = torch.rand(2, 3, m, 2 * m) * 2 - 1
    diff, out = check_parity(g, path, x)
    assert float(torch.as_tensor(out).std()) > 0.05  # the network's output is not flat
    assert diff < 1e-4


def test_macs_match_the_published_counts():
    """unet_256: 6.05 GMAC (12.1 GFLOP) per 256x256 image; resnet_9blocks: 56.8 G as GAN
    Compression (torchprofile) reports it. Both conventions agree when there are no transposed convs."""
    unet = profile(build_generator(ModelConfig(), init=False), size=256)
    assert unet.macs == 6_048_186_368
    assert unet.parameters == 54_413_955
    resnet = profile(build_generator(ModelConfig(generator="resnet_9blocks"), init=False), size=256)
    assert round(resnet.macs_torchprofile / 1e9, 1) == 56.8
    mobile = profile(build_generator(ModelConfig(generator="mobile_unet_256", base_channels=16)), size=256)
    assert mobile.macs == mobile.macs_torchprofile  # resize-convs: no transposed convs
    assert not any(isinstance(m, nn.ConvTranspose2d) for m in
                   build_generator(ModelConfig(generator="mobile_unet_128")).modules())
    assert unet.macs / mobile.macs > 40


def test_transposed_conv_conventions_differ_by_stride_squared():
    net = nn.ConvTranspose2d(8, 4, 4, 2, 1)
    p = profile(net, in_channels=8, size=16)
    assert p.macs == (8 * 16 * 16) * 4 * 16  # every input value times C_out x k*k
    assert p.macs_torchprofile == (4 * 32 * 32) * 8 * 16  # every output value x C_in x k*k
    assert p.macs_torchprofile == 4 * p.macs  # stride**2
