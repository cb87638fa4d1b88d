"""Named architectures: one creation entry point for generators and discriminators (registry.py),
and ModelConfig, the architecture a checkpoint stores (config.py)."""
from __future__ import annotations

from .config import ModelConfig
from .layers import count_parameters
from .mobile_unet import MobileUNet
from .patchgan import PatchGAN, PixelGAN
from .multiscale import MultiScaleDiscriminator
from .registry import (DISCRIMINATORS, GENERATORS, STUDENTS, DiscriminatorSpec, GeneratorSpec,
                       apply_spectral_norm, build_discriminator, build_generator,
                       check_discriminator_size, check_image_size, check_model, describe,
                       generator_multiple)
from .resnet import ResNetGenerator
from .unet import UNet

__all__ = ["GENERATORS", "DISCRIMINATORS", "STUDENTS", "MobileUNet", "GeneratorSpec",
           "DiscriminatorSpec", "ModelConfig", "build_generator", "build_discriminator",
           "apply_spectral_norm", "generator_multiple", "check_model", "check_image_size",
           "check_discriminator_size", "describe", "count_parameters", "UNet", "ResNetGenerator",
           "PatchGAN", "PixelGAN", "MultiScaleDiscriminator"]
