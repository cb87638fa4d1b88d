"""Multiply-accumulate (MAC) counts of a network, in the two conventions papers use.

Convolutions and linear layers only: norms, activations, upsampling and concatenation are left out
(they are memory-bound and a few percent of the total). The conventions differ only for
transposed convolutions: each *input* pixel is multiplied by the whole k*k*C_out kernel (the work
actually done, ``macs``), whereas torchprofile (used by GAN Compression) counts them like a
forward conv at the *output* size, ``out_pixels * C_in * k*k`` (``macs_torchprofile``), about
stride**2 times more for the U-Net's stride-2 layers.

Resize-convs (:class:`~pix2pix.models.resize_conv.ResizeConv2d`) count as written in both: a 3x3
convolution at the output size. Training and the exported graph run their large layers in an exact
form with 16/36 of those multiply-adds (see :mod:`pix2pix.models.resize_conv`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from .layers import count_parameters


@dataclass(frozen=True)
class Profile:
    parameters: int
    macs: int  # transposed convs counted by input size (the arithmetic performed)
    macs_torchprofile: int  # transposed convs counted by output size, as torchprofile counts
    size: int  # square input side the MACs are for


def profile(net: nn.Module, *, in_channels: int = 3, size: int = 256) -> Profile:
    """Parameters and MACs of ``net`` for one (1, in_channels, size, size) input."""
    totals = [0, 0]

    def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        x = inputs[0]
        if isinstance(module, nn.ConvTranspose2d):
            k = math.prod(module.kernel_size)
            per_in = module.out_channels // module.groups * k
            totals[0] += x.numel() * per_in
            totals[1] += output.numel() * (module.in_channels // module.groups) * k
        elif isinstance(module, nn.Conv2d):
            n = output.numel() * (module.in_channels // module.groups) * math.prod(module.kernel_size)
            totals[0] += n
            totals[1] += n
        elif isinstance(module, nn.Linear):
            n = output.numel() * module.in_features
            totals[0] += n
            totals[1] += n

    handles = [m.register_forward_hook(hook) for m in net.modules()
               if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear))]
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad():
            net(torch.zeros(1, in_channels, size, size))
    finally:
        for h in handles:
            h.remove()
        net.train(was_training)
    return Profile(parameters=count_parameters(net), macs=totals[0], macs_torchprofile=totals[1],
                   size=size)


__all__ = ["Profile", "profile"]
