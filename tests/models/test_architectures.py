import re

import pytest
import torch

from pix2pix.config import ModelConfig
from pix2pix.models import DISCRIMINATORS, GENERATORS, build_discriminator, build_generator
from pix2pix.models.layers import count_parameters

SIZES = {  # sizes each generator must accept (multiples of its requirement), incl. non-square
    "unet_256": [(256, 256), (256, 512)],
    "unet_128": [(128, 128), (256, 128)],
    "resnet_9blocks": [(64, 64), (96, 128)],
    "resnet_6blocks": [(64, 64), (100, 36)],
    "mobile_unet_256": [(256, 256), (256, 512)],
    "mobile_unet_128": [(128, 128), (256, 128)],
}


def test_every_generator_has_size_cases():
    assert set(SIZES) == set(GENERATORS)


@pytest.mark.parametrize("arch", sorted(GENERATORS))
@pytest.mark.parametrize("channels", [(3, 3), (1, 3), (4, 2)])
def test_generator_output_shape_and_range(arch, channels):
    cfg = ModelConfig(generator=arch, base_channels=8, in_channels=channels[0], out_channels=channels[1])
    net = build_generator(cfg).eval()
    for h, w in SIZES[arch]:
        x = torch.randn(2, channels[0], h, w)
        with torch.no_grad():
            y = net(x)
        assert y.shape == (2, channels[1], h, w)
        assert y.abs().max() <= 1.0


def test_reference_parameter_counts():
    assert count_parameters(build_generator(ModelConfig(norm="batch"))) == 54_413_955
    assert count_parameters(build_generator(ModelConfig(norm="instance"))) == 54_409_603
    assert count_parameters(build_discriminator(ModelConfig(norm="batch"))) == 2_768_705


def test_patchgan_output_is_30x30_for_256():
    d = build_discriminator(ModelConfig(d_layers=3))
    assert d(torch.zeros(1, 6, 256, 256)).shape == (1, 1, 30, 30)


def receptive_field(d: torch.nn.Module, channels: int, size: int) -> int:
    """Width of the input region that influences one central output logit (measured by gradient)."""
    x = torch.randn(1, channels, size, size, requires_grad=True)
    y = d(x)
    y[0, 0, y.shape[2] // 2, y.shape[3] // 2].backward()
    cols = (x.grad.abs().sum(dim=(0, 1, 2)) > 0).nonzero()
    return int(cols.max() - cols.min() + 1)


@pytest.mark.parametrize("n_layers,rf", [(1, 16), (3, 70), (5, 286)])
def test_patchgan_receptive_fields(n_layers, rf):
    cfg = ModelConfig(d_layers=n_layers, d_base_channels=4, norm="none")
    assert receptive_field(build_discriminator(cfg), 6, 400) == rf


def test_pixelgan_is_per_pixel():
    cfg = ModelConfig(discriminator="pixel", d_base_channels=4, norm="none")
    d = build_discriminator(cfg)
    assert d(torch.zeros(1, 6, 40, 30)).shape == (1, 1, 40, 30)
    assert receptive_field(d, 6, 9) == 1


def test_unconditional_discriminator_sees_only_output():
    d = build_discriminator(ModelConfig(conditional=False, out_channels=2, d_base_channels=4))
    assert d(torch.zeros(1, 2, 64, 64)).shape == (1, 1, 6, 6)


@pytest.mark.parametrize("arch", sorted(GENERATORS))
def test_weight_names_are_readable(arch):
    keys = build_generator(ModelConfig(generator=arch, base_channels=4)).state_dict()
    assert not any("model.model" in k for k in keys)
    assert all(re.fullmatch(r"[a-z_]+(\.(\d+|[a-z_]+))*", k) for k in keys)


def test_unet_names_and_dropout_placement():
    net = build_generator(ModelConfig())
    assert "down.0.weight" in net.state_dict() and "up.0.conv.bias" in net.state_dict()
    dropouts = [name for name, m in net.named_modules() if isinstance(m, torch.nn.Dropout)]
    # The paper's decoder: CD512-CD1024-CD1024 then no dropout, counted from the bottleneck.
    assert dropouts == ["up.5.dropout", "up.6.dropout", "up.7.dropout"]
    assert build_generator(ModelConfig(dropout=0.0)).up[7].__class__ is torch.nn.Sequential
    assert not any(isinstance(m, torch.nn.Dropout) for m in build_generator(ModelConfig(dropout=0.0)).modules())


def test_init_is_normal_002():
    net = build_generator(ModelConfig())
    w = net.down[3].conv.weight.detach()
    assert abs(float(w.std()) - 0.02) < 0.002 and abs(float(w.mean())) < 0.002
    g = net.down[3].norm.weight.detach()
    assert abs(float(g.mean()) - 1.0) < 0.01 and 0.01 < float(g.std()) < 0.03


def test_discriminators_listed():
    assert set(DISCRIMINATORS) == {"patch", "pixel"}


def test_bad_model_config_names_the_field():
    with pytest.raises(ValueError, match="model.norm='group'"):
        ModelConfig(norm="group").validate()
    with pytest.raises(ValueError, match="model.generator"):
        ModelConfig(generator="unet_512").validate()
