"""Named architectures: one creation entry point for generators and discriminators (registry.py),
and ModelConfig, the architecture a checkpoint stores (config.py)."""
from __future__ import annotations

from .config import ModelConfig
from .layers import count_parameters
from .patchgan import PatchGAN, PixelGAN
from .registry import (DISCRIMINATORS, GENERATORS, GeneratorSpec, build_discriminator, build_generator,
                       check_image_size, check_model_names, generator_multiple)
from .resnet import ResNetGenerator
from .unet import UNet

__all__ = ["GENERATORS", "DISCRIMINATORS", "GeneratorSpec", "ModelConfig", "build_generator",
           "build_discriminator", "generator_multiple", "check_model_names", "check_image_size",
           "count_parameters", "UNet", "ResNetGenerator", "PatchGAN", "PixelGAN"]
