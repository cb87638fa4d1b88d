import math

import pytest
import torch

from pix2pix.training.losses import discriminator_loss, generator_adversarial_loss, l1_loss


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
