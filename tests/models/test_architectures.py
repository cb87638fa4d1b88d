import re

import pytest
import torch

from pix2pix.config import ModelConfig
from pix2pix.models import (DISCRIMINATORS, GENERATORS, build_discriminator, build_generator,
                            check_discriminator_size, check_model)
from pix2pix.models.layers import count_parameters
from pix2pix.training import StepConfig, train_step
from pix2pix.training.losses import as_feature_scales, as_outputs

SIZES = {  # sizes each generator must accept (multiples of its requirement), incl. non-square
    "unet_256": [(256, 256), (256, 512)],
    "unet_128": [(128, 128), (256, 128)],
    "resnet_9blocks": [(64, 64), (96, 128)],
    "resnet_6blocks": [(64, 64), (100, 36)],
    "unet_alex_256": [(256, 256), (256, 512)],
    "unet_alex_128": [(128, 128), (256, 128)],
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


# Pinned figures where known (a new table entry needs none to be tested): output sides for 64 px
# crops with d_layers=2 (one per scale), and the default config's parameter count (70x70
# PatchGAN, 6 channels, batch norm).
D_KNOWN = {
    "patch": {"sides": [14], "params": 2_768_705},
    "pixel": {"sides": [64], "params": 6 * 64 + 64 + 64 * 128 + 2 * 128 + 128 + 1},
    "multiscale": {"sides": [14, 6], "params": 2 * 2_768_705},  # d_scales=2 PatchGANs
}


@pytest.mark.parametrize("name", sorted(DISCRIMINATORS))
@pytest.mark.parametrize("norm", ["batch", "none"])
def test_discriminator_table_entry(name, norm):
    """Builds, gives one logit map per scale (the same with features=True, which adds the
    activations), has the known parameter count, and trains in a real D+G step (fused when it
    has no batch norm)."""
    spec, known = DISCRIMINATORS[name], D_KNOWN.get(name, {})
    assert spec.description
    params = count_parameters(build_discriminator(ModelConfig(discriminator=name)))
    assert params == known.get("params", params) > 0
    cfg = ModelConfig(generator="unet_128", discriminator=name, base_channels=4, d_base_channels=4,
                      d_layers=2, norm=norm)
    check_model(cfg)
    check_discriminator_size(cfg, 64)
    d = build_discriminator(cfg)
    x = torch.randn(2, 6, 64, 64)
    outs = as_outputs(d(x))
    sides = [o.shape[-1] for o in outs]
    assert [o.shape for o in outs] == [(2, 1, s, s) for s in sides] and min(sides) >= 1
    assert sides == known.get("sides", sides)
    logits, feats = d(x, features=True)
    assert all(torch.equal(a, b) for a, b in zip(outs, as_outputs(logits)))
    scales = as_feature_scales(feats)
    assert len(scales) == len(outs) and all(len(f) >= 2 and f[0].shape[0] == 2 for f in scales)

    torch.manual_seed(0)
    g = build_generator(cfg)
    opt_g = torch.optim.Adam(g.parameters(), lr=1e-3)
    opt_d = torch.optim.Adam(d.parameters(), lr=1e-3)
    before = {k: v.clone() for k, v in d.state_dict().items()}
    a, b = torch.rand(2, 3, 128, 128) * 2 - 1, torch.rand(2, 3, 128, 128) * 2 - 1
    metrics = train_step(g, d, opt_g, opt_d, a, b,
                         StepConfig(fuse_d=norm == "none", feature_matching_weight=10.0))
    assert {"loss/d_real", "loss/d_fake", "loss/g_gan", "loss/g_feature_matching"} <= metrics.keys()
    assert all(torch.isfinite(v) for v in metrics.values())
    assert any(not torch.equal(before[k], v) for k, v in d.state_dict().items())


@pytest.mark.parametrize("name", sorted(DISCRIMINATORS))
def test_discriminator_size_check_matches_its_output(name):
    """The table's geometry check passes exactly when the discriminator has an output."""
    for size, layers, scales in ((32, 3, 2), (64, 3, 3), (128, 6, 1), (256, 3, 3)):
        cfg = ModelConfig(discriminator=name, d_layers=layers, d_scales=scales, d_base_channels=2,
                          norm="none")
        try:
            outs = as_outputs(build_discriminator(cfg)(torch.zeros(1, 6, size, size)))
            has_output = all(o.shape[-1] >= 1 for o in outs)
        except RuntimeError:  # a conv's input smaller than its kernel
            has_output = False
        try:
            check_discriminator_size(cfg, size)
            fits = True
        except ValueError as e:
            assert f"model.d_layers={layers} is too deep" in str(e)
            fits = False
        assert fits == has_output, (size, layers, scales)


def test_multiscale_scales_see_the_pooled_pair():
    cfg = ModelConfig(discriminator="multiscale", d_scales=3, d_base_channels=4, norm="none")
    d = build_discriminator(cfg)
    assert [o.shape[-1] for o in d(torch.zeros(1, 6, 256, 256))] == [30, 14, 6]
    # Each scale is a PatchGAN of its own; the second judges the 2x average-pooled input.
    x = torch.randn(1, 6, 128, 128)
    pooled = torch.nn.functional.avg_pool2d(x, 3, 2, 1, count_include_pad=False)
    assert torch.allclose(d(x)[1], d.scales[1](pooled))
    with pytest.raises(ValueError, match="coarsest of model.d_scales=3 scales"):
        check_discriminator_size(ModelConfig(discriminator="multiscale", d_scales=3), 64)


def test_bad_model_config_names_the_field():
    with pytest.raises(ValueError, match="model.norm='group'"):
        check_model(ModelConfig(norm="group"))
    with pytest.raises(ValueError, match="model.generator"):
        check_model(ModelConfig(generator="unet_512"))
    with pytest.raises(ValueError, match="model.discriminator"):
        check_model(ModelConfig(discriminator="stylegan"))


@pytest.mark.parametrize("name", sorted(DISCRIMINATORS))
def test_cli_takes_and_lists_every_discriminator(name, capsys):
    from pix2pix.cli import build_parser
    from pix2pix.cli.train import build_config

    parser = build_parser()
    cfg = build_config(parser.parse_args(["train", "--data", "d", "--discriminator", name,
                                          "--d-scales", "3", "--feature-matching", "10"]))
    assert cfg.model.discriminator == name and cfg.model.d_scales == 3
    assert cfg.feature_matching_weight == 10
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert f"{name} ({' '.join(DISCRIMINATORS[name].description.split())})" in help_text
    with pytest.raises(ValueError, match="feature_matching_weight=10.0 needs the discriminator"):
        build_config(parser.parse_args(["train", "--data", "d", "--discriminator", name,
                                        "--feature-matching", "10", "--objective", "l1"]))


def test_input_skip_adds_a_linear_map_of_the_input_before_tanh():
    cfg = ModelConfig(generator="unet_128", base_channels=4, in_channels=1, out_channels=3, input_skip=True)
    net = build_generator(cfg).eval()
    with torch.no_grad():  # the decoder's last layer silenced: only the input's path is left
        net.up[0].conv.weight.zero_()
        net.up[0].conv.bias.zero_()
        net.input_skip.weight.copy_(torch.tensor([1.0, 0.5, -2.0]).view(3, 1, 1, 1))
        net.input_skip.bias.copy_(torch.tensor([0.0, 0.1, 0.0]))
        x = torch.rand(2, 1, 128, 128) * 2 - 1
        y = net(x)
    expected = torch.tanh(torch.cat([x, 0.5 * x + 0.1, -2 * x], dim=1))
    assert torch.allclose(y, expected, atol=1e-6)
    # Off (the paper's), the U-Net has no such layer and ends in its own tanh.
    plain = build_generator(ModelConfig(generator="unet_128", base_channels=4))
    assert plain.input_skip is None and isinstance(plain.up[0].tanh, torch.nn.Tanh)
    with pytest.raises(ValueError, match="model.input_skip is for unet_256, unet_128; resnet_6blocks"):
        check_model(ModelConfig(generator="resnet_6blocks", input_skip=True))
