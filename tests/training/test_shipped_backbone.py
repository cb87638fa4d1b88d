"""The perceptual loss's AlexNet backbone ships inside the package, checked by sha256 at load."""
import hashlib
import shutil

import pytest
import torch

from pix2pix.training import perceptual
from pix2pix.training.perceptual import (SHIPPED, ShippedWeightsCorrupt, build_perceptual,
                                         load_shipped_backbone, shipped_path)


def test_shipped_file_is_small_named_and_matches_its_digest():
    path = shipped_path("alex")
    assert path.is_file() and path.stat().st_size < 6_000_000  # fp16: a few MB
    assert hashlib.sha256(path.read_bytes()).hexdigest() == SHIPPED["alex"][1]
    licence = (path.parent / "LICENSE-lpips-alexnet.txt").read_text()
    assert path.name in licence and SHIPPED["alex"][1] in licence and "BSD" in licence


def test_shipped_backbone_equals_the_converted_lpips_weights_to_fp16(lpips_weights):
    from pix2pix.metrics.lpips import load_lpips

    shipped, converted = load_shipped_backbone("alex").state_dict(), load_lpips("alex").state_dict()
    convs = [k for k in converted if k.startswith("convs.")]
    assert len(convs) == 10
    for k in convs:
        assert shipped[k].dtype == torch.float32
        torch.testing.assert_close(shipped[k], converted[k].half().float(), rtol=0, atol=0)
    # Same features, to fp16 rounding: the loss trains on what LPIPS-alex measures with.
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    for a, b in zip(load_shipped_backbone("alex").features(x), load_lpips("alex").features(x)):
        assert (a - b).abs().max() <= 2e-3 * b.abs().max()


def test_a_damaged_shipped_file_is_refused_by_name(tmp_path, monkeypatch):
    bad = tmp_path / "weights"
    bad.mkdir()
    damaged = bad / SHIPPED["alex"][0]
    shutil.copy(shipped_path("alex"), damaged)
    with open(damaged, "r+b") as f:  # flip one byte of the tensor data
        f.seek(-10, 2)
        byte = f.read(1)
        f.seek(-10, 2)
        f.write(bytes([byte[0] ^ 0xFF]))
    monkeypatch.setattr(perceptual, "shipped_path", lambda net="alex": damaged)
    with pytest.raises(ShippedWeightsCorrupt, match="sha256.*reinstall pix2pix"):
        build_perceptual("alex")
    damaged.unlink()
    with pytest.raises(ShippedWeightsCorrupt, match="missing from the installed package"):
        build_perceptual("alex")
