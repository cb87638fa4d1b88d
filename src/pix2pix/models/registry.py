"""The registry of named architectures: a spec table for generators and one for discriminators
(a new architecture is one entry here + its module), one creation entry point for each, and the
checks that a config fits them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from torch import nn

from ..util.checks import check_choice
from .config import ModelConfig
from .alex_unet import AlexUNet
from .layers import NORMS, TEST_STATISTICS, init_weights
from .mobile_unet import MobileUNet
from .multiscale import MultiScaleDiscriminator, check_multiscale_depth
from .patchgan import PatchGAN, PixelGAN, check_patch_depth
from .projected import ProjectedDiscriminator, check_projected_size
from .resnet import ResNetGenerator
from .unet import UPSAMPLES, UNet


@dataclass(frozen=True)
class GeneratorSpec:
    build: Callable[[ModelConfig], nn.Module]
    # Input sides must be multiples of this; the Translator pads to it.
    multiple: int
    description: str
    # Pretrained weights the training loop loads into a fresh model of this kind (the name of a
    # backbone shipped in the package, pix2pix.training.perceptual.SHIPPED), or None.
    backbone: str | None = None
    # Whether it takes ``model.input_skip`` (a 1x1 convolution from input to output).
    input_skip: bool = False


def _unet(depth: int) -> Callable[[ModelConfig], nn.Module]:
    return lambda c: UNet(in_channels=c.in_channels, out_channels=c.out_channels,
                          base_channels=c.base_channels, depth=depth, norm=c.norm, dropout=c.dropout,
                          dropout_start=c.dropout_start, upsample=c.upsample, input_skip=c.input_skip)


def _resnet(blocks: int) -> Callable[[ModelConfig], nn.Module]:
    return lambda c: ResNetGenerator(in_channels=c.in_channels, out_channels=c.out_channels,
                                     base_channels=c.base_channels, blocks=blocks, norm=c.norm,
                                     dropout=c.dropout, upsample=c.upsample)


def _alex_unet(depth: int) -> Callable[[ModelConfig], nn.Module]:
    return lambda c: AlexUNet(in_channels=c.in_channels, out_channels=c.out_channels,
                              base_channels=c.base_channels, depth=depth, norm=c.norm, dropout=c.dropout,
                              dropout_start=c.dropout_start, upsample=c.upsample)


def _mobile_unet(depth: int) -> Callable[[ModelConfig], nn.Module]:
    return lambda c: MobileUNet(in_channels=c.in_channels, out_channels=c.out_channels,
                                base_channels=c.base_channels, depth=depth, norm=c.norm,
                                dropout=c.dropout)


GENERATORS: dict[str, GeneratorSpec] = {
    "unet_256": GeneratorSpec(_unet(8), 256, "U-Net, 8 downsamplings (the paper's generator)", input_skip=True),
    "unet_128": GeneratorSpec(_unet(7), 128, "U-Net, 7 downsamplings", input_skip=True),
    "resnet_9blocks": GeneratorSpec(_resnet(9), 4, "ResNet, 9 residual blocks"),
    "resnet_6blocks": GeneratorSpec(_resnet(6), 4, "ResNet, 6 residual blocks"),
    "unet_alex_256": GeneratorSpec(_alex_unet(8), 256, "unet_256 whose encoder at 1/4, 1/8 and 1/16 "
                                   "size is ImageNet AlexNet, pretrained (shipped)", backbone="alex"),
    "unet_alex_128": GeneratorSpec(_alex_unet(7), 128, "unet_alex_256 with 7 downsamplings",
                                   backbone="alex"),
    "mobile_unet_256": GeneratorSpec(_mobile_unet(8), 256, "U-Net with separable convs, resize-conv "
                                     "decoder, channels capped at 4x base (a fast student)"),
    "mobile_unet_128": GeneratorSpec(_mobile_unet(7), 128, "mobile_unet_256 with 7 downsamplings"),
}

# Distillation students: a generator and a width (``--student NAME`` in `pix2pix distill`); any
# generator with ``--base-channels`` works as well, these are the presets listed and tested.
STUDENTS: dict[str, tuple[str, int]] = {
    "unet_256_w8": ("unet_256", 8),
    "unet_256_w16": ("unet_256", 16),
    "unet_256_w32": ("unet_256", 32),
    "unet_128_w8": ("unet_128", 8),
    "unet_128_w16": ("unet_128", 16),
    "unet_128_w32": ("unet_128", 32),
    "mobile_unet_256_w16": ("mobile_unet_256", 16),
    "mobile_unet_256_w32": ("mobile_unet_256", 32),
    "mobile_unet_128_w16": ("mobile_unet_128", 16),
    "mobile_unet_128_w32": ("mobile_unet_128", 32),
}

def _any_size(cfg: ModelConfig, image_size: int) -> None:
    """Fully convolutional with no downsampling: every crop size works."""


@dataclass(frozen=True)
class DiscriminatorSpec:
    # (config, input channels) -> the module. Its forward(x) returns one logit map or a list of
    # them (one per scale); forward(x, features=True) returns (those, the activations compared by
    # the feature-matching loss: a list per scale, or one list).
    build: Callable[[ModelConfig, int], nn.Module]
    description: str
    # Raise ValueError when crops of this side would give the discriminator no output.
    check_size: Callable[[ModelConfig, int], None] = _any_size
    # A frozen pretrained part the training loop loads into a new run (a backbone shipped in the
    # package, pix2pix.training.perceptual.SHIPPED), or None.
    backbone: str | None = None


DISCRIMINATORS: dict[str, DiscriminatorSpec] = {
    "patch": DiscriminatorSpec(
        lambda c, ch: PatchGAN(in_channels=ch, base_channels=c.d_base_channels, n_layers=c.d_layers,
                               norm=c.norm),
        "PatchGAN; receptive field set by d_layers (1: 16px, 3: 70px, 5: 286px)",
        lambda c, size: check_patch_depth(size, c.d_layers)),
    "pixel": DiscriminatorSpec(
        lambda c, ch: PixelGAN(in_channels=ch, base_channels=c.d_base_channels, norm=c.norm),
        "1x1 PixelGAN"),
    "multiscale": DiscriminatorSpec(
        lambda c, ch: MultiScaleDiscriminator(in_channels=ch, base_channels=c.d_base_channels,
                                              n_layers=c.d_layers, norm=c.norm, scales=c.d_scales),
        "pix2pixHD: d_scales PatchGANs (d_layers each), on the pair average-pooled by 2 per scale",
        lambda c, size: check_multiscale_depth(size, c.d_layers, c.d_scales)),
    "projected": DiscriminatorSpec(
        lambda c, ch: ProjectedDiscriminator(cond_channels=ch - c.out_channels, out_channels=c.out_channels,
                                             head_channels=2 * c.d_base_channels, norm=c.norm),
        "heads of width 2 x d_base_channels on frozen ImageNet AlexNet features (shipped) at "
        "H/4, H/8, H/16 of the pair (projected / vision-aided GAN)",
        lambda c, size: check_projected_size(size), backbone="alex"),
}


def describe(table: dict) -> str:
    """'name (description), ...' of a spec table, for help texts."""
    return "; ".join(f"{name} ({spec.description})" for name, spec in table.items())


def build_generator(cfg: ModelConfig, *, init: bool = True) -> nn.Module:
    """A generator for ``cfg``, weights drawn from N(0, 0.02) unless ``init`` is False."""
    if cfg.generator not in GENERATORS:
        raise ValueError(f"unknown generator {cfg.generator!r}; choose one of {', '.join(GENERATORS)}")
    net = GENERATORS[cfg.generator].build(cfg)
    if init:
        init_weights(net)
    return net


def build_discriminator(cfg: ModelConfig, *, init: bool = True) -> nn.Module:
    """The discriminator; it sees input and output concatenated unless ``cfg.conditional`` is off."""
    if cfg.discriminator not in DISCRIMINATORS:
        raise ValueError(f"unknown discriminator {cfg.discriminator!r}; choose one of "
                         f"{', '.join(DISCRIMINATORS)}")
    channels = cfg.out_channels + (cfg.in_channels if cfg.conditional else 0)
    net = DISCRIMINATORS[cfg.discriminator].build(cfg, channels)
    if init:
        init_weights(net)
    if cfg.d_spectral_norm:
        apply_spectral_norm(net)
    return net


def apply_spectral_norm(net: nn.Module) -> nn.Module:
    """Divide every convolution's weight by its top singular value (Miyato et al. 2018), estimated
    by one power iteration per training forward: D becomes ~1-Lipschitz per layer, so it cannot
    sharpen its decision boundary faster than G can follow."""
    from torch.nn.utils.parametrizations import spectral_norm

    for module in list(net.modules()):
        # A frozen pretrained part (the projected discriminator's backbone) is left as it is.
        if isinstance(module, nn.Conv2d) and module.weight.requires_grad:
            spectral_norm(module)
    return net


def generator_multiple(name: str) -> int:
    return GENERATORS[name].multiple



def check_model(cfg: ModelConfig) -> None:
    """Raise ValueError unless ``cfg``'s fields are in range and its generator, discriminator, norm
    and upsampling are in the registry (what ``ModelConfig.validate`` cannot know)."""
    cfg.validate()
    check_choice("model.generator", cfg.generator, tuple(GENERATORS))
    check_choice("model.discriminator", cfg.discriminator, tuple(DISCRIMINATORS))
    check_choice("model.norm", cfg.norm, NORMS)
    check_choice("model.upsample", cfg.upsample, UPSAMPLES)
    check_choice("model.test_statistics", cfg.test_statistics, TEST_STATISTICS)
    if cfg.input_skip and not GENERATORS[cfg.generator].input_skip:
        takers = ", ".join(name for name, spec in GENERATORS.items() if spec.input_skip)
        raise ValueError(f"model.input_skip is for {takers}; {cfg.generator} has none")


def check_discriminator_size(cfg: ModelConfig, image_size: int) -> None:
    """Raise ValueError when the discriminator has no output for training crops of ``image_size``."""
    DISCRIMINATORS[cfg.discriminator].check_size(cfg, image_size)


def check_image_size(cfg: ModelConfig, image_size: int, preprocess: str) -> None:
    """Raise ValueError when training crops of ``image_size`` do not fit the generator's multiple."""
    multiple = generator_multiple(cfg.generator)
    if preprocess != "none" and image_size % multiple:
        raise ValueError(f"image_size {image_size} is not a multiple of {multiple}, which "
                         f"{cfg.generator} needs; use --image-size {multiple} or another generator")
