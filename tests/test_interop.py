"""Importing generators saved by the reference PyTorch implementation.

The reference networks below are rebuilt from its published layout (UnetSkipConnectionBlock,
ResnetGenerator) to make files exactly like its ``latest_net_G.pth``; the key list they produce is
checked against ``data/reference_unet256_keys.txt`` (taken from the reference's own files).
"""
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
from torch import nn

from pix2pix import Translator
from pix2pix.checkpoint import load_pretrained, read_info
from pix2pix.interop import import_reference_weights, unet_key_map
from pix2pix.config import ModelConfig

KEYS_FILE = Path(__file__).parent / "data" / "reference_unet256_keys.txt"


# ---- the reference architectures, as its code builds them ---------------------------------------

class RefUnetBlock(nn.Module):
    def __init__(self, outer_nc, inner_nc, input_nc=None, submodule=None, outermost=False,
                 innermost=False, norm_layer=nn.BatchNorm2d, use_dropout=False):
        super().__init__()
        self.outermost = outermost
        use_bias = norm_layer is not nn.BatchNorm2d
        input_nc = outer_nc if input_nc is None else input_nc
        downconv = nn.Conv2d(input_nc, inner_nc, 4, 2, 1, bias=use_bias)
        downrelu, downnorm = nn.LeakyReLU(0.2, True), norm_layer(inner_nc)
        uprelu, upnorm = nn.ReLU(True), norm_layer(outer_nc)
        if outermost:
            model = [downconv, submodule, uprelu, nn.ConvTranspose2d(inner_nc * 2, outer_nc, 4, 2, 1), nn.Tanh()]
        elif innermost:
            model = [downrelu, downconv, uprelu, nn.ConvTranspose2d(inner_nc, outer_nc, 4, 2, 1, bias=use_bias), upnorm]
        else:
            model = [downrelu, downconv, downnorm, submodule, uprelu,
                     nn.ConvTranspose2d(inner_nc * 2, outer_nc, 4, 2, 1, bias=use_bias), upnorm]
            if use_dropout:
                model.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*model)

    def forward(self, x):
        return self.model(x) if self.outermost else torch.cat([x, self.model(x)], 1)


class RefUnet(nn.Module):
    def __init__(self, input_nc=3, output_nc=3, num_downs=8, ngf=64, norm_layer=nn.BatchNorm2d, use_dropout=True):
        super().__init__()
        block = RefUnetBlock(ngf * 8, ngf * 8, norm_layer=norm_layer, innermost=True)
        for _ in range(num_downs - 5):
            block = RefUnetBlock(ngf * 8, ngf * 8, submodule=block, norm_layer=norm_layer, use_dropout=use_dropout)
        block = RefUnetBlock(ngf * 4, ngf * 8, submodule=block, norm_layer=norm_layer)
        block = RefUnetBlock(ngf * 2, ngf * 4, submodule=block, norm_layer=norm_layer)
        block = RefUnetBlock(ngf, ngf * 2, submodule=block, norm_layer=norm_layer)
        self.model = RefUnetBlock(output_nc, ngf, input_nc=input_nc, submodule=block, outermost=True,
                                  norm_layer=norm_layer)

    def forward(self, x):
        return self.model(x)


class RefResnetBlock(nn.Module):
    def __init__(self, dim, norm_layer, use_dropout, use_bias):
        super().__init__()
        block = [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=use_bias), norm_layer(dim), nn.ReLU(True)]
        if use_dropout:
            block.append(nn.Dropout(0.5))
        block += [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=use_bias), norm_layer(dim)]
        self.conv_block = nn.Sequential(*block)

    def forward(self, x):
        return x + self.conv_block(x)


class RefResnet(nn.Module):
    def __init__(self, input_nc, output_nc, ngf, n_blocks, use_dropout, norm_layer):
        super().__init__()
        use_bias = norm_layer is not nn.BatchNorm2d
        model = [nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, 7, bias=use_bias), norm_layer(ngf), nn.ReLU(True)]
        for i in range(2):
            mult = 2 ** i
            model += [nn.Conv2d(ngf * mult, ngf * mult * 2, 3, 2, 1, bias=use_bias),
                      norm_layer(ngf * mult * 2), nn.ReLU(True)]
        model += [RefResnetBlock(ngf * 4, norm_layer, use_dropout, use_bias) for _ in range(n_blocks)]
        for i in range(2):
            mult = 2 ** (2 - i)
            model += [nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 3, 2, 1, output_padding=1, bias=use_bias),
                      norm_layer(ngf * mult // 2), nn.ReLU(True)]
        model += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, 7), nn.Tanh()]
        self.model = nn.Sequential(*model)

    def forward(self, x):
        return self.model(x)


def instance_norm(c):
    return nn.InstanceNorm2d(c, affine=False, track_running_stats=False)


def randomise(net: nn.Module, seed: int = 0) -> nn.Module:
    """Distinct values in every tensor, scaled so every level shapes the output (not just the skips)."""
    g = torch.Generator().manual_seed(seed)
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            fan_in = m.weight[0].numel() if isinstance(m, nn.Conv2d) else m.weight.shape[0] * 16 / 4
            m.weight.data = torch.randn(m.weight.shape, generator=g) * (1.5 / fan_in) ** 0.5
            if m.bias is not None:
                m.bias.data = torch.randn(m.bias.shape, generator=g) * 0.1
        elif isinstance(m, nn.BatchNorm2d):
            m.weight.data = 1 + 0.2 * torch.randn(m.weight.shape, generator=g)
            m.bias.data = 0.2 * torch.randn(m.bias.shape, generator=g)
            m.running_mean = 0.1 * torch.randn(m.running_mean.shape, generator=g)
            m.running_var = 0.5 + torch.rand(m.running_var.shape, generator=g)
            m.num_batches_tracked = torch.tensor(1234)
    return net.eval()


def read_keys_file() -> list[tuple[str, tuple[int, ...], str]]:
    rows = []
    for line in KEYS_FILE.read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        key, rest = line.split(" ", 1)
        shape, dtype = rest.rsplit(" ", 1)
        rows.append((key, tuple(int(v) for v in shape.strip("()").split(",") if v.strip()), dtype))
    return rows


# Where each reference layer must land, written out level by level (not computed), as the oracle.
P1 = "model.model.1.model."
EXPECTED_UNET256 = {
    "model.model.0": "down.0", "model.model.3": "up.0.conv",
    P1 + "1": "down.1.conv", P1 + "2": "down.1.norm", P1 + "5": "up.1.conv", P1 + "6": "up.1.norm",
    P1 + "3.model.1": "down.2.conv", P1 + "3.model.2": "down.2.norm",
    P1 + "3.model.5": "up.2.conv", P1 + "3.model.6": "up.2.norm",
    P1 + "3.model.3.model.1": "down.3.conv", P1 + "3.model.3.model.2": "down.3.norm",
    P1 + "3.model.3.model.5": "up.3.conv", P1 + "3.model.3.model.6": "up.3.norm",
    P1 + "3.model.3.model.3.model.1": "down.4.conv", P1 + "3.model.3.model.3.model.2": "down.4.norm",
    P1 + "3.model.3.model.3.model.5": "up.4.conv", P1 + "3.model.3.model.3.model.6": "up.4.norm",
    P1 + "3.model.3.model.3.model.3.model.1": "down.5.conv",
    P1 + "3.model.3.model.3.model.3.model.2": "down.5.norm",
    P1 + "3.model.3.model.3.model.3.model.5": "up.5.conv",
    P1 + "3.model.3.model.3.model.3.model.6": "up.5.norm",
    P1 + "3.model.3.model.3.model.3.model.3.model.1": "down.6.conv",
    P1 + "3.model.3.model.3.model.3.model.3.model.2": "down.6.norm",
    P1 + "3.model.3.model.3.model.3.model.3.model.5": "up.6.conv",
    P1 + "3.model.3.model.3.model.3.model.3.model.6": "up.6.norm",
    # innermost: 1 down-conv, 3 up-conv, 4 up-norm (no down-norm)
    P1 + "3.model.3.model.3.model.3.model.3.model.3.model.1": "down.7.conv",
    P1 + "3.model.3.model.3.model.3.model.3.model.3.model.3": "up.7.conv",
    P1 + "3.model.3.model.3.model.3.model.3.model.3.model.4": "up.7.norm",
}


@pytest.fixture(scope="module")
def reference_unet256(tmp_path_factory):
    """(reference net, its saved latest_net_G.pth, the imported pretrained dir)."""
    torch.manual_seed(0)
    ref = randomise(RefUnet())
    folder = tmp_path_factory.mktemp("ref")
    pth = folder / "latest_net_G.pth"
    torch.save(OrderedDict(ref.state_dict()), pth)
    out = import_reference_weights(pth, "unet_256", folder / "imported", direction="BtoA")
    return ref, pth, out


def test_reference_rebuild_matches_the_published_key_list(reference_unet256):
    ref, _, _ = reference_unet256
    published = read_keys_file()
    assert len(published) == 82
    ours = [(k, tuple(v.shape), str(v.dtype).replace("torch.", "")) for k, v in ref.state_dict().items()]
    assert sorted(ours) == sorted(published)


def test_every_reference_tensor_lands_in_its_place(reference_unet256):
    ref, _, out = reference_unet256
    generator, info = load_pretrained(out)
    ours = generator.state_dict()
    assert len(ours) == 82
    for key, tensor in ref.state_dict().items():
        stem, _, param = key.rpartition(".")
        target = f"{EXPECTED_UNET256[stem]}.{param}"
        assert torch.equal(ours[target], tensor), f"{key} did not land in {target}"
    # Batch statistics at test time: the reference's test mode unless it is given --eval.
    assert info.model == ModelConfig(generator="unet_256", dropout=0.5, dropout_start=1, test_statistics="batch")
    assert read_info(out).direction == "BtoA"
    assert read_info(out).extra["imported_from"]["file"] == "latest_net_G.pth"


def batch_norms_in_train_mode(ref: nn.Module) -> nn.Module:
    """The reference's test mode without --eval: batch norm on the image's own statistics
    (momentum 0 leaves the stored ones as they are)."""
    for m in ref.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.train()
            m.momentum = 0.0
    return ref


def test_imported_model_computes_what_the_reference_computes(reference_unet256):
    ref, _, out = reference_unet256
    x = torch.rand(1, 3, 256, 256, generator=torch.Generator().manual_seed(1)) * 2 - 1
    with torch.no_grad():
        running = ref.eval()(x)
        own = batch_norms_in_train_mode(ref)(x)
    ref.eval()
    assert running.std() > 0.2 and (running - own).abs().mean() > 0.05  # lively, and the modes differ
    # By default as the reference tests (each image's statistics), and as with --eval on request.
    got = Translator.from_pretrained(out, device="cpu").translate_tensor(x)
    assert (got - own).abs().max() < 1e-5
    got = Translator.from_pretrained(out, device="cpu", batch_stats=False).translate_tensor(x)
    assert (got - running).abs().max() < 1e-5


def test_paper_mode_drops_the_same_units_as_the_reference(reference_unet256):
    """Dropout on the reference's levels (our up.6..up.4), drawn in the same order: same numbers."""
    ref, _, out = reference_unet256
    x = torch.rand(1, 3, 256, 256, generator=torch.Generator().manual_seed(2)) * 2 - 1
    for m in batch_norms_in_train_mode(ref).modules():
        if isinstance(m, nn.Dropout):
            m.train()
    torch.manual_seed(7)
    with torch.no_grad():
        expected = ref(x)
    paper = Translator.from_pretrained(out, device="cpu", dropout=True)
    assert [n for n, m in paper.generator.named_modules() if isinstance(m, nn.Dropout)] == \
        ["up.4.dropout", "up.5.dropout", "up.6.dropout"]
    torch.manual_seed(7)
    got = paper.translate_tensor(x)
    assert (got - expected).abs().max() < 1e-5
    ref.eval()


def test_a_wrong_mapping_is_caught(reference_unet256, monkeypatch, tmp_path):
    """Swap two same-shaped levels in the mapping: the import still 'works', the output does not."""
    import pix2pix.interop as interop

    ref, pth, _ = reference_unet256

    def swapped(depth):
        m = unet_key_map(depth)
        a, b = P1 + "3.model.3.model.3.model.5", P1 + "3.model.3.model.3.model.3.model.5"
        m[a], m[b] = m[b], m[a]
        return m

    monkeypatch.setattr(interop, "unet_key_map", swapped)
    out = interop.import_reference_weights(pth, "unet_256", tmp_path / "bad")
    x = torch.rand(1, 3, 256, 256, generator=torch.Generator().manual_seed(1)) * 2 - 1
    with torch.no_grad():
        expected = ref.eval()(x)
    got = Translator.from_pretrained(out, device="cpu").translate_tensor(x)
    assert (got - expected).abs().max() > 1e-2


def test_older_files_without_batch_counters(reference_unet256, tmp_path):
    ref, _, _ = reference_unet256
    state = OrderedDict((k, v) for k, v in ref.state_dict().items() if "num_batches_tracked" not in k)
    torch.save(state, tmp_path / "old.pth")
    out = import_reference_weights(tmp_path / "old.pth", "unet_256", tmp_path / "m")
    assert torch.equal(load_pretrained(out)[0].state_dict()["up.7.norm.running_var"],
                       state[P1 + "3.model.3.model.3.model.3.model.3.model.3.model.4.running_var"])


@pytest.mark.parametrize("dropout", [False, True])
def test_reference_resnet_instance_norm(tmp_path, dropout):
    ref = randomise(RefResnet(3, 3, 8, 6, dropout, instance_norm))
    torch.save(ref.state_dict(), tmp_path / "g.pth")
    out = import_reference_weights(tmp_path / "g.pth", "resnet_6blocks", tmp_path / "m")
    info = read_info(out)
    assert (info.model.norm, info.model.base_channels, info.model.dropout) == ("instance", 8, 0.5 if dropout else 0.0)
    x = torch.rand(1, 3, 64, 96) * 2 - 1
    with torch.no_grad():
        expected = ref(x)
    got = Translator.from_pretrained(out, device="cpu").translate_tensor(x)
    assert (got - expected).abs().max() < 1e-5


def test_unet_instance_norm_and_other_channels(tmp_path):
    ref = randomise(RefUnet(input_nc=1, output_nc=2, num_downs=7, ngf=8, norm_layer=instance_norm))
    torch.save(ref.state_dict(), tmp_path / "g.pth")
    out = import_reference_weights(tmp_path / "g.pth", "unet_128", tmp_path / "m")
    cfg = read_info(out).model
    assert (cfg.in_channels, cfg.out_channels, cfg.base_channels, cfg.norm) == (1, 2, 8, "instance")
    x = torch.rand(2, 1, 128, 128) * 2 - 1
    with torch.no_grad():
        expected = ref(x)
    assert (Translator.from_pretrained(out, device="cpu").translate_tensor(x) - expected).abs().max() < 1e-5


def test_errors_name_the_file_and_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pth does not exist"):
        import_reference_weights(tmp_path / "nope.pth", "unet_256", tmp_path / "o")
    # A pickled module (what some forks save) is refused rather than unpickled.
    torch.save(nn.Conv2d(3, 3, 1), tmp_path / "module.pth")
    with pytest.raises(ValueError, match=r"module\.pth.*weights_only=True"):
        import_reference_weights(tmp_path / "module.pth", "unet_256", tmp_path / "o")
    # A discriminator file given as the generator (the reference's NLayerDiscriminator keys).
    d = nn.Module()
    d.model = nn.Sequential(nn.Conv2d(6, 8, 4, 2, 1), nn.LeakyReLU(0.2), nn.Conv2d(8, 1, 4, 1, 1))
    torch.save(d.state_dict(), tmp_path / "latest_net_D.pth")
    with pytest.raises(ValueError, match="discriminator"):
        import_reference_weights(tmp_path / "latest_net_D.pth", "unet_256", tmp_path / "o")
    # The right family, the wrong depth.
    torch.save(RefUnet(num_downs=7, ngf=8).state_dict(), tmp_path / "u128.pth")
    with pytest.raises(ValueError, match=r"unet_128"):
        import_reference_weights(tmp_path / "u128.pth", "unet_256", tmp_path / "o")
    assert not (tmp_path / "o").exists()
