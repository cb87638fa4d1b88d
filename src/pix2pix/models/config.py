"""ModelConfig: the architecture of a generator/discriminator pair, by the registry's names.

The registry builds from this class, so this class does not import the registry:
``models.check_model(cfg)`` checks the names against it (``TrainConfig.validate`` and checkpoint
loading call it), ``ModelConfig.validate`` the ranges of the fields.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..util.checks import check_positive


@dataclass(frozen=True)
class ModelConfig:
    """Generator and discriminator architecture."""

    generator: str = "unet_256"
    in_channels: int = 3
    out_channels: int = 3
    base_channels: int = 64
    norm: str = "batch"
    dropout: float = 0.5
    # U-Net decoder level (from the bottleneck) where dropout begins: 0 as in the paper, 1 as in
    # the reference PyTorch code (models imported with `pix2pix import-weights`).
    dropout_start: int = 0
    discriminator: str = "patch"
    d_layers: int = 3
    d_base_channels: int = 64
    # Scales of the "multiscale" discriminator (pix2pixHD uses 2 or 3); other discriminators ignore it.
    d_scales: int = 2
    # The conditional D sees (input, output); False gives the paper's unconditional "GAN" ablation.
    conditional: bool = True
    # ---- recipe options (off: the paper's). Generator decoder upsampling: "transpose" (paper) or
    # "resize" (nearest x2 + 3x3 conv, no checkerboard); spectral norm on every D convolution.
    upsample: str = "transpose"
    d_spectral_norm: bool = False
    # U-Nets: a 1x1 convolution from the input to the output's pre-activation (off: the paper's).
    input_skip: bool = False
    # How batch norms normalise at test time (``layers.TEST_STATISTICS``): "running" (eval mode, the
    # default for models saved without this field) or "batch", each image's own statistics, the
    # paper's test mode (the paper recipe and imported reference models). Training ignores it.
    test_statistics: str = "running"

    def validate(self) -> None:
        """Raise ValueError on a field out of its range (names: ``models.check_model``)."""
        for name in ("in_channels", "out_channels", "base_channels", "d_base_channels", "d_layers",
                     "d_scales"):
            check_positive(f"model.{name}", getattr(self, name))
        if not 0 <= self.dropout < 1:
            raise ValueError(f"model.dropout={self.dropout!r} must be in [0, 1)")
        check_positive("model.dropout_start", self.dropout_start, allow_zero=True)
