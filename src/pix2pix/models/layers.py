"""Normalisation and initialisation helpers shared by every network."""
from __future__ import annotations

import copy
from typing import Callable, Literal, Optional

import torch
from torch import nn

Norm = Literal["batch", "instance", "none"]
NORMS: tuple[str, ...] = ("batch", "instance", "none")


def check_norm(norm: str) -> None:
    if norm not in NORMS:
        raise ValueError(f"norm={norm!r} is not supported; choose one of {', '.join(NORMS)}")


def norm_layer(norm: Norm, channels: int) -> nn.Module:
    """A normalisation layer for ``channels`` feature maps.

    Instance norm carries no affine parameters and no running statistics, as in the reference
    implementation; that is why its parameter count differs from batch norm's.
    """
    check_norm(norm)
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    if norm == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    return nn.Identity()


def conv_bias(norm: Norm) -> bool:
    """Batch norm's shift makes a conv bias redundant, so those convs have none."""
    return norm != "batch"


def init_weights(module: nn.Module, std: float = 0.02) -> None:
    """Paper init: conv weights from N(0, std), norm scales from N(1, std), biases zero."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, std)
            nn.init.zeros_(m.bias)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def has_batch_norm(module: nn.Module) -> bool:
    """Whether any layer of ``module`` is a batch norm (its output depends on the batch, or on
    running statistics, by mode)."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules())


# How a generator's batch norms normalise at test time: with the running statistics saved in the
# model ("running": eval mode, one output per input wherever the image sits), or with each image's
# own statistics ("batch": the paper's test mode, which the reference code uses unless given --eval).
TEST_STATISTICS: tuple[str, ...] = ("running", "batch")


def _swapped(module: nn.Module, make: Callable[[str, nn.Module], Optional[nn.Module]]) -> nn.Module:
    """An eval-mode copy of ``module`` in which every layer that ``make(qualified name, layer)``
    gives a replacement for is replaced by it (``make`` returns None to keep a layer)."""
    out = copy.deepcopy(module)
    for name, layer in list(out.named_modules()):
        new = make(name, layer) if name else None
        if new is not None:
            parent, _, leaf = name.rpartition(".")
            setattr(out.get_submodule(parent) if parent else out, leaf, new)
    return out.eval()


def _with_affine(norm: nn.Module, like: nn.Module) -> nn.Module:
    """``norm`` sharing the scale and shift of ``like`` (both norms of ``like.num_features``)."""
    if like.affine:
        norm.weight, norm.bias = like.weight, like.bias
    return norm


def _image_norm(layer: nn.Module) -> bool:
    return isinstance(layer, nn.InstanceNorm2d) and not layer.track_running_stats


def with_image_statistics(module: nn.Module) -> nn.Module:
    """A copy of ``module`` whose batch norms normalise each image by its own statistics.

    Each ``BatchNorm2d`` becomes an affine ``InstanceNorm2d`` with the same scale, shift and eps:
    at batch 1 that is exactly batch norm in train mode (mean and biased variance over H x W per
    channel), and at any batch size it keeps images apart. Unlike train-mode batch norm it is an
    eval-mode layer with no state to update, so it exports to ONNX (InstanceNormalization).
    """
    return _swapped(module, lambda _name, m: _with_affine(
        nn.InstanceNorm2d(m.num_features, eps=m.eps, affine=m.affine, track_running_stats=False), m)
        if isinstance(m, nn.BatchNorm2d) else None)


def as_tested(module: nn.Module, test_statistics: str) -> nn.Module:
    """``module`` normalising as a model with ``test_statistics`` (TEST_STATISTICS) tests: a copy
    with each image's own statistics for "batch" where it has batch norms, else ``module`` itself."""
    if test_statistics == "batch" and has_batch_norm(module):
        return with_image_statistics(module)
    return module


def uses_image_statistics(module: nn.Module) -> bool:
    """Whether ``module`` normalises some layer by each image's own statistics (an instance norm
    without running statistics: ``norm="instance"`` models, or :func:`with_image_statistics`)."""
    return any(_image_norm(m) for m in module.modules())


@torch.no_grad()
def with_fixed_statistics(module: nn.Module, x: torch.Tensor) -> nn.Module:
    """A copy of ``module`` whose per-image norms use, for every input, the statistics they see
    on ``x`` (1, C, H, W): each such ``InstanceNorm2d`` becomes an eval-mode ``BatchNorm2d`` holding
    that mean and (biased) variance, with the same affine and eps.

    Why: tiles of one large image must share one set of statistics, or each tile comes out in its
    own tone; ``x`` is the whole image (or a smaller copy of it, where the whole would not fit).
    On ``x`` itself the copy computes what ``module`` does.
    """
    if x.shape[0] != 1:
        raise ValueError(f"with_fixed_statistics takes one image (1, C, H, W), got {tuple(x.shape)}")
    seen: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def keep(name: str):
        def hook(_m: nn.Module, inputs: tuple, _out: torch.Tensor) -> None:
            v = inputs[0].float()
            seen[name] = (v.mean((0, 2, 3)), v.var((0, 2, 3), unbiased=False))
        return hook

    hooks = [m.register_forward_hook(keep(n)) for n, m in module.named_modules() if _image_norm(m)]
    try:
        module(x)
    finally:
        for h in hooks:
            h.remove()

    def fixed(name: str, m: nn.Module) -> Optional[nn.Module]:
        if name not in seen:
            return None
        bn = _with_affine(nn.BatchNorm2d(m.num_features, eps=m.eps, affine=m.affine), m)
        bn.running_mean, bn.running_var = seen[name]
        return bn

    return _swapped(module, fixed)


def freeze(module: nn.Module) -> nn.Module:
    """Mark ``module`` as a frozen pretrained part: no gradient, now or after ``set_requires_grad``."""
    module.requires_grad_(False)
    module.frozen = True
    return module


def set_requires_grad(module: nn.Module, flag: bool) -> None:
    """Turn gradients of ``module``'s parameters on or off, leaving its frozen parts (``freeze``) off."""
    frozen = {id(p) for m in module.modules() if getattr(m, "frozen", False) for p in m.parameters()}
    for p in module.parameters():
        if id(p) not in frozen:
            p.requires_grad_(flag)


__all__ = ["Norm", "NORMS", "norm_layer", "conv_bias", "init_weights", "count_parameters",
           "set_requires_grad", "freeze", "check_norm", "has_batch_norm", "TEST_STATISTICS",
           "with_image_statistics", "as_tested", "uses_image_statistics", "with_fixed_statistics"]
