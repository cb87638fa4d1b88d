"""Each recipe option changes training in the way it claims; recipes are config presets."""
import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pix2pix.cli import build_parser
from pix2pix.cli.train import build_config
from pix2pix.config import DataConfig, ModelConfig, TrainConfig, to_dict
from pix2pix.models import GENERATORS, apply_spectral_norm, build_discriminator, build_generator
from pix2pix.models.unet import up_layers
from pix2pix.recipes import DEFAULT_RECIPE, RECIPES
from pix2pix.training import StepConfig, train_step

pytestmark = pytest.mark.usefixtures("one_thread")


# The mobile students always decode by resize-conv (no model.upsample choice; see test_students).
@pytest.mark.parametrize("name", [g for g in GENERATORS if not g.startswith("mobile_")])
def test_resize_decoder_has_no_transposed_convs_and_keeps_shapes(name):
    size = 64 if name.startswith("resnet") else GENERATORS[name].multiple
    paper = build_generator(ModelConfig(generator=name, base_channels=8))
    resize = build_generator(ModelConfig(generator=name, base_channels=8, upsample="resize"))
    assert any(isinstance(m, nn.ConvTranspose2d) for m in paper.modules())
    assert not any(isinstance(m, nn.ConvTranspose2d) for m in resize.modules())
    x = torch.rand(2, 3, size, size) * 2 - 1
    paper.eval(), resize.eval()
    with torch.no_grad():
        out = resize(x)
    assert out.shape == paper(x).shape == x.shape
    assert out.abs().max() <= 1 and out.std() > 0
    if name.startswith("unet"):  # same weight names: only the kernels' shapes differ
        assert paper.state_dict().keys() == resize.state_dict().keys()


def test_resize_conv_paints_no_checkerboard_where_transpose_does():
    """A flat feature map through one size-doubling layer: the resize-conv output is flat away
    from the border, the transposed conv's has a period-2 pattern (its uneven kernel overlap)."""
    torch.manual_seed(0)
    flat = torch.ones(1, 16, 8, 8)
    for kind, expect_flat in (("resize", True), ("transpose", False)):
        up = nn.Sequential(up_layers(16, 4, kind, bias=False))
        with torch.no_grad():
            inner = up(flat)[..., 2:-2, 2:-2]
        spread = (inner - inner.mean(dim=(2, 3), keepdim=True)).abs().max().item()
        assert (spread < 1e-5) == expect_flat, (kind, spread)


def test_spectral_norm_bounds_the_top_singular_value():
    torch.manual_seed(0)
    d = build_discriminator(ModelConfig(base_channels=8, d_base_channels=8))
    with torch.no_grad():
        for m in d.modules():
            if isinstance(m, nn.Conv2d):
                m.weight.mul_(20)  # make every layer far from 1-Lipschitz first
    convs = [m for m in d.modules() if isinstance(m, nn.Conv2d)]
    before = [torch.linalg.matrix_norm(m.weight.flatten(1), ord=2).item() for m in convs]
    assert min(before) > 3
    apply_spectral_norm(d).train()
    x = torch.rand(1, 6, 64, 64)
    for _ in range(30):  # one power iteration per training forward
        d(x)
    after = [torch.linalg.matrix_norm(m.weight.flatten(1), ord=2).item() for m in convs]
    assert max(after) == pytest.approx(1.0, abs=0.02) and min(after) > 0.95
    assert build_discriminator(ModelConfig(d_spectral_norm=True)).net[0].parametrizations.weight


def test_perceptual_loss_is_zero_for_equal_images_and_grows_with_blur(lpips_weights, world):
    from pix2pix.training.perceptual import build_perceptual

    sat, _ = world
    x = torch.from_numpy(sat[900:964, 2000:2064].copy()).permute(2, 0, 1)[None].float() / 127.5 - 1
    loss = build_perceptual("alex")

    def blur(img, sigma):
        r = int(3 * sigma)
        k = torch.exp(-torch.arange(-r, r + 1.0) ** 2 / (2 * sigma**2))
        k = (k / k.sum()).view(1, 1, 1, -1).repeat(3, 1, 1, 1)
        img = F.conv2d(F.pad(img, (r, r, 0, 0), mode="reflect"), k, groups=3)
        return F.conv2d(F.pad(img, (0, 0, r, r), mode="reflect"), k.transpose(2, 3), groups=3)

    assert loss(x, x).item() == pytest.approx(0.0, abs=1e-6)
    d = [loss(blur(x, s), x).item() for s in (0.5, 1.0, 2.0, 4.0)]
    assert 0 < d[0] < d[1] < d[2] < d[3], d
    fake = blur(x, 2.0).requires_grad_(True)
    loss(fake, x).backward()
    assert fake.grad.abs().sum() > 0  # a training signal for the generator
    assert loss(x[:, :1], x[:, :1]).item() == pytest.approx(0.0, abs=1e-6)  # gray repeated
    with pytest.raises(ValueError, match="1- or 3-channel"):
        loss(torch.zeros(1, 2, 32, 32), torch.zeros(1, 2, 32, 32))


def test_perceptual_nets_shallow_vgg_and_sums(lpips_weights, world):
    from pix2pix.metrics.lpips import load_lpips
    from pix2pix.config import perceptual_parts
    from pix2pix.training.perceptual import build_perceptual

    sat, _ = world
    x = torch.from_numpy(sat[900:964, 2000:2064].copy()).permute(2, 0, 1)[None].float() / 127.5 - 1
    y = torch.flip(x, dims=(3,))
    shallow = build_perceptual("vgg3")
    net = shallow.backbones[0]
    # VGG16 up to relu3_3: its first 7 convolutions and first 3 taps, with the full net's weights.
    assert len(net.convs) == 7 and net.taps == [1, 3, 6]
    full = load_lpips("vgg")
    assert torch.equal(net.convs[6].weight, full.convs[6].weight)
    feats_full, feats = full.features(x), net.features(x)
    assert len(feats) == 3 and all(torch.equal(a, b) for a, b in zip(feats, feats_full))
    # The deeper taps add to the distance: the full net's loss is larger.
    assert 0 < shallow(x, y).item() < build_perceptual("vgg")(x, y).item()
    # A "+" list sums its nets' distances.
    both = build_perceptual("alex+vgg3")(x, y).item()
    assert both == pytest.approx(build_perceptual("alex")(x, y).item() + shallow(x, y).item(), rel=1e-5)
    assert build_perceptual("alex+vgg3")(x, x).item() == pytest.approx(0.0, abs=1e-6)
    assert perceptual_parts("alex+vgg3@64") == [("alex", 0), ("vgg3", 64)]
    # On a crop: the distance of one random window of the pair, the same window for both images.
    cropped = build_perceptual("vgg3@32")
    torch.manual_seed(3)
    top, left = int(torch.randint(64 - 32 + 1, ())), int(torch.randint(64 - 32 + 1, ()))
    torch.manual_seed(3)
    window = (..., slice(top, top + 32), slice(left, left + 32))
    assert cropped(x, y).item() == pytest.approx(shallow(x[window], y[window]).item(), rel=1e-5)
    assert cropped(x, x).item() == pytest.approx(0.0, abs=1e-6)
    for bad in ("vgg5", "alex+alex", "alex+", "vgg3@16", "vgg3@x"):
        with pytest.raises(ValueError, match="perceptual_net"):
            perceptual_parts(bad)


def test_perceptual_term_enters_the_generator_step(lpips_weights):
    from pix2pix.training.perceptual import build_perceptual

    cfg = ModelConfig(generator="unet_128", base_channels=8, d_base_channels=8, dropout=0.0)
    a, b = torch.rand(1, 3, 128, 128) * 2 - 1, torch.rand(1, 3, 128, 128) * 2 - 1
    grads = []
    for weight in (0.0, 10.0):
        torch.manual_seed(0)
        g, d = build_generator(cfg), build_discriminator(cfg)
        og, od = torch.optim.SGD(g.parameters(), 0.0), torch.optim.SGD(d.parameters(), 0.0)
        m = train_step(g, d, og, od, a, b, StepConfig(perceptual_weight=weight),
                       perceptual=build_perceptual("alex"))
        assert ("loss/g_perceptual" in m) == (weight > 0)
        grads.append(torch.cat([p.grad.flatten() for p in g.parameters()]))
    assert not torch.allclose(grads[0], grads[1])


def test_d_lr_mult_gives_the_discriminator_its_own_learning_rate(tiny_dataset, tmp_path):
    from pix2pix.checkpoint import load_training_checkpoint
    from pix2pix.config import DataConfig
    from pix2pix.training import train

    cfg = TrainConfig(model=ModelConfig(generator="unet_128", base_channels=8, d_base_channels=8),
                      data=DataConfig(root=str(tiny_dataset), image_size=128), out=str(tmp_path / "r"),
                      max_steps=2, lr=1e-4, d_lr_mult=3.0, device="cpu", tensorboard="off")
    run = train(cfg, progress=False)
    state = load_training_checkpoint(run)[3]
    assert state["opt_g"]["param_groups"][0]["lr"] == pytest.approx(1e-4)
    assert state["opt_d"]["param_groups"][0]["lr"] == pytest.approx(3e-4)


def _cli(*argv):
    return build_config(build_parser().parse_args(["train", "--data", "d", *argv]))


def test_recipes_are_presets_that_options_refine():
    # paper: the defaults, in fp32 (the default precision is auto: bf16 where native), and its
    # models test with each image's own statistics (a test-time field: training is the defaults').
    assert RECIPES["paper"].overrides == ("precision=fp32", "model.test_statistics=batch")
    assert TrainConfig().precision == "auto" and TrainConfig().model.test_statistics == "running"
    defaults = to_dict(TrainConfig(data=DataConfig(root="d")))
    assert to_dict(_cli("--recipe", "paper")) == {**defaults, "precision": "fp32",
                                                   "model": {**defaults["model"], "test_statistics": "batch"}}
    # No --recipe: `pix2pix train` uses the default recipe, and it is not the paper's.
    assert to_dict(_cli()) == to_dict(_cli("--recipe", DEFAULT_RECIPE)) != to_dict(_cli("--recipe", "paper"))
    modern = _cli("--recipe", "modern")
    assert modern.model.upsample == "resize" and modern.perceptual_weight > 0 and modern.ema > 0
    assert modern.r1_weight == 0.1 and modern.r1_every == 16 and modern.model.test_statistics == "running"
    # The run's own options win over the recipe.
    mine = _cli("--recipe", "modern", "--perceptual-weight", "3", "--set", "model.upsample=transpose")
    assert mine.perceptual_weight == 3 and mine.model.upsample == "transpose"
    assert _cli("--spectral-norm").model.d_spectral_norm
    with pytest.raises(ValueError, match="model.upsample='bilinear' is not valid"):
        _cli("--upsample", "bilinear")
    with pytest.raises(ValueError, match="d_lr_mult"):
        _cli("--d-lr-mult", "0")
    # A recipe's fields are saved like any other: a checkpoint's config.json rebuilds the model.
    assert json.loads(json.dumps(to_dict(modern)))["model"]["upsample"] == "resize"
