import math

import pytest
import torch

from pix2pix.training.losses import (discriminator_loss, feature_matching_loss,
                                     generator_adversarial_loss, l1_loss)


def test_vanilla_on_zero_logits_is_log2():
    z = torch.zeros(1, 1, 30, 30)
    real, fake = discriminator_loss("vanilla", z, z)
    assert real.item() == pytest.approx(math.log(2)) and fake.item() == pytest.approx(math.log(2))
    assert generator_adversarial_loss("vanilla", z).item() == pytest.approx(math.log(2))


def test_vanilla_known_values():
    real, fake = discriminator_loss("vanilla", torch.tensor([2.0]), torch.tensor([-1.0]))
    assert real.item() == pytest.approx(math.log1p(math.exp(-2.0)))
    assert fake.item() == pytest.approx(math.log1p(math.exp(-1.0)))
    # Non-saturating G loss: -log(sigmoid(x)).
    assert generator_adversarial_loss("vanilla", torch.tensor([-3.0])).item() == pytest.approx(
        math.log1p(math.exp(3.0)))


def test_lsgan_values():
    real, fake = discriminator_loss("lsgan", torch.tensor([1.0, 0.0]), torch.tensor([0.0, 0.5]))
    assert real.item() == pytest.approx(0.5) and fake.item() == pytest.approx(0.125)
    assert generator_adversarial_loss("lsgan", torch.tensor([0.0])).item() == pytest.approx(1.0)


def test_hinge_values():
    real, fake = discriminator_loss("hinge", torch.tensor([2.0, 0.0]), torch.tensor([-2.0, 0.5]))
    assert real.item() == pytest.approx(0.5) and fake.item() == pytest.approx(0.75)
    assert generator_adversarial_loss("hinge", torch.tensor([1.0, 3.0])).item() == pytest.approx(-2.0)


def test_l1():
    assert l1_loss(torch.ones(2, 3, 4, 4), torch.zeros(2, 3, 4, 4)).item() == 1.0


def test_unknown_mode():
    with pytest.raises(ValueError, match="wgan"):
        discriminator_loss("wgan", torch.zeros(1), torch.zeros(1))


def test_losses_average_over_discriminator_scales():
    a, b = torch.tensor([2.0]), torch.tensor([-1.0, 0.5])
    real, fake = discriminator_loss("lsgan", [a, b], [b, a])
    ra, fa = discriminator_loss("lsgan", a, b)
    rb, fb = discriminator_loss("lsgan", b, a)
    assert real.item() == pytest.approx((ra.item() + rb.item()) / 2)
    assert fake.item() == pytest.approx((fa.item() + fb.item()) / 2)
    g = generator_adversarial_loss("hinge", [a, b])
    assert g.item() == pytest.approx((-2.0 + 0.25) / 2)
    # One scale given as a list is the same as the bare tensor.
    assert torch.equal(discriminator_loss("vanilla", [a], [b])[0], discriminator_loss("vanilla", a, b)[0])


def test_feature_matching_is_zero_for_equal_features_and_grows_with_distance():
    torch.manual_seed(0)
    real = [torch.randn(2, 4, 8, 8), torch.randn(2, 8, 4, 4)]
    assert feature_matching_loss(real, [r.clone() for r in real]).item() == 0.0
    distances = [feature_matching_loss([r + eps for r in real], real).item() for eps in (0.1, 0.5, 2.0)]
    assert distances == pytest.approx([0.4, 2.0, 8.0])  # 4 / layers * sum of per-layer L1 (pix2pixHD)
    # Two scales: the mean of each scale's loss.
    two = feature_matching_loss([[r + 0.1 for r in real], [r + 0.5 for r in real]], [real, real])
    assert two.item() == pytest.approx((0.4 + 2.0) / 2)
    # The real side is a target: no gradient flows into it.
    fake = [r.clone().requires_grad_() for r in real]
    target = [r.clone().requires_grad_() for r in real]
    feature_matching_loss([f + 1 for f in fake], target).backward()
    assert fake[0].grad is not None and target[0].grad is None
