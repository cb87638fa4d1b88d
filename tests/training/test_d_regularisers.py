"""Discriminator options: paired augmentation (one draw for both halves of a pair, real and fake
alike, none outside training) and the R1 penalty."""
import pytest
import torch

from pix2pix.config import ModelConfig
from pix2pix.models import build_discriminator, build_generator
from pix2pix.training import StepConfig, train_step

pytestmark = pytest.mark.usefixtures("one_thread")
kornia = pytest.importorskip("kornia", reason="the augment extra (kornia) is not installed")
from pix2pix.training.augment import PairAugment, parse_policy, r1_penalty  # noqa: E402

SMALL = ModelConfig(generator="unet_128", base_channels=8, d_base_channels=8, dropout=0.0)


def _image(seed: int, n: int = 3, c: int = 3, size: int = 64) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, c, size // 8, size // 8, generator=g)
    return torch.nn.functional.interpolate(x, size=size, mode="bilinear") * 2 - 1  # smooth, so shifts show


@pytest.mark.parametrize("policy", ["translation", "cutout", "color", "translation,cutout,color"])
def test_one_draw_for_both_halves_of_a_pair(policy):
    torch.manual_seed(0)
    aug = PairAugment(policy).train()
    x = _image(1)
    out = aug(torch.cat([x, x], dim=1))  # a pair whose halves are equal stays equal...
    torch.testing.assert_close(out[:, :3], out[:, 3:])
    assert not torch.allclose(out[:, :3], x, atol=1e-3)  # ...and it did change
    # Each image of the batch gets its own draw, and each call a new one.
    again = aug(torch.cat([x, x], dim=1))
    assert not torch.allclose(again, out, atol=1e-3)


def test_no_augmentation_outside_training_and_unknown_policies_are_named():
    x = _image(2, c=6)
    assert PairAugment("translation,cutout,color").eval()(x) is x
    with pytest.raises(ValueError, match="unknown policy rotate.*translation, cutout, color"):
        parse_policy("translation,rotate")
    with pytest.raises(ValueError, match="needs RGB input and output"):
        PairAugment("color").train()(_image(3, c=4))


def test_gradients_flow_through_the_augmentation_to_the_generator_output():
    aug = PairAugment("translation,cutout,color").train()
    fake = _image(4).requires_grad_(True)
    aug(torch.cat([_image(5), fake], dim=1)).sum().backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0


def test_the_step_augments_what_d_sees_real_and_fake_not_what_g_is_scored_on():
    a, b = _image(6, n=1, size=128), _image(7, n=1, size=128)
    seen = []

    class Spy(torch.nn.Module):  # a real D, recording its inputs
        def __init__(self):
            super().__init__()
            self.d = build_discriminator(SMALL)

        def forward(self, x, **kw):
            seen.append(x.detach().clone())
            return self.d(x, **kw)

    def run(augment):
        seen.clear()
        torch.manual_seed(0)
        g, d = build_generator(SMALL), Spy()
        og, od = torch.optim.SGD(g.parameters(), 0.0), torch.optim.SGD(d.parameters(), 0.0)
        m = train_step(g, d, og, od, a, b, StepConfig(), augment=augment)
        return list(seen), m

    plain, m_plain = run(None)
    augmented, m_aug = run(PairAugment("translation,cutout"))
    real = torch.cat([a, b], dim=1)
    assert torch.equal(plain[0], real) and not torch.allclose(augmented[0], real)  # real pair
    assert not torch.allclose(augmented[1], plain[1])  # the fake pair (D step)
    assert not torch.allclose(augmented[2], plain[2])  # the fake pair (G step)
    torch.testing.assert_close(m_aug["loss/g_l1"], m_plain["loss/g_l1"])  # L1 on the plain output


def test_r1_is_zero_for_a_flat_discriminator_and_changes_d_gradients():
    d = build_discriminator(SMALL)
    x = _image(8, n=2, c=6).requires_grad_(True)
    with torch.no_grad():
        last = [m for m in d.modules() if isinstance(m, torch.nn.Conv2d)][-1]
        saved = last.weight.clone()
        last.weight.zero_()  # D's output no longer depends on its input
    assert r1_penalty([d(x)], x).item() == 0
    with torch.no_grad():
        last.weight.copy_(saved)
    x = x.detach().requires_grad_(True)
    assert r1_penalty([d(x)], x).item() > 0
    a, b = _image(9, n=1, size=128), _image(10, n=1, size=128)
    grads, metrics = [], []
    for weight in (0.0, 10.0):
        torch.manual_seed(0)
        g, d = build_generator(SMALL), build_discriminator(SMALL)
        og, od = torch.optim.SGD(g.parameters(), 0.0), torch.optim.SGD(d.parameters(), 0.0)
        metrics.append(train_step(g, d, og, od, a, b, StepConfig(r1_weight=weight)))
        grads.append(torch.cat([p.grad.flatten() for p in d.parameters()]))
    assert "loss/d_r1" not in metrics[0] and metrics[1]["loss/d_r1"] > 0
    assert not torch.allclose(grads[0], grads[1])


def test_feature_matching_under_augmentation_compares_one_draw():
    """With feature matching, the fake and the real pair get the same draw: a fake equal to the
    target then matches exactly, as it does without augmentation."""
    from pix2pix.training.step import _judge_fake

    cfg = StepConfig(feature_matching_weight=10.0)
    d = build_discriminator(ModelConfig(discriminator="multiscale", d_base_channels=8))
    a, b = _image(11, n=2, size=128), _image(12, n=2, size=128)
    torch.manual_seed(0)
    _, same = _judge_fake(d, a, b, b.clone(), cfg, PairAugment("translation,cutout,color"))
    _, other = _judge_fake(d, a, b, _image(13, n=2, size=128), cfg, PairAugment("translation,cutout,color"))
    assert same.item() == pytest.approx(0.0, abs=1e-6) and other.item() > 0


def test_r1_weight_means_the_same_strength_at_every_image_size():
    # A 1x1-convolution D has the same gradient |w| at every pixel: summed over pixels it grows with
    # the pixel count, so unscaled a weight tuned at 128² would be 4x as strong at 256².
    d = torch.nn.Conv2d(6, 1, 1, bias=False)
    with torch.no_grad():
        d.weight.copy_(torch.arange(1.0, 7.0).view(1, 6, 1, 1) / 10)
    per_pixel = float((d.weight ** 2).sum())
    for size in (64, 128, 256):
        x = _image(size, n=2, c=6, size=size).requires_grad_(True)
        assert r1_penalty([d(x)], x).item() == pytest.approx(128 * 128 * per_pixel, rel=1e-5), size


def test_lazy_r1_is_the_full_penalty_scaled_on_every_nth_step_and_absent_between():
    """r1_every=k: steps k-1, 2k-1, ... carry k times the penalty (the same D gradients as the eager
    penalty at k times the weight); the steps between are exactly the step without R1, fused D
    pass included."""
    a, b = _image(14, n=2, size=128), _image(15, n=2, size=128)
    small = ModelConfig(generator="unet_128", base_channels=8, d_base_channels=8, dropout=0.0,
                        norm="instance")

    def d_grads(cfg: StepConfig, step: int) -> tuple[torch.Tensor, dict]:
        torch.manual_seed(0)
        g, d = build_generator(small), build_discriminator(small)
        og, od = torch.optim.SGD(g.parameters(), 0.0), torch.optim.SGD(d.parameters(), 0.0)
        metrics = train_step(g, d, og, od, a, b, cfg, step=step)
        return torch.cat([p.grad.flatten() for p in d.parameters()]), metrics

    lazy = StepConfig(r1_weight=0.5, r1_every=4, fuse_d=True)
    for step in (0, 1, 2, 4):
        grads, metrics = d_grads(lazy, step)
        plain, _ = d_grads(StepConfig(fuse_d=True), step)
        assert "loss/d_r1" not in metrics and torch.allclose(grads, plain, atol=1e-6), step
    for step in (3, 7):
        grads, metrics = d_grads(lazy, step)
        eager, eager_metrics = d_grads(StepConfig(r1_weight=2.0), step)
        assert metrics["loss/d_r1"] > 0 and metrics["loss/d_r1"] == pytest.approx(eager_metrics["loss/d_r1"])
        assert torch.allclose(grads, eager, atol=1e-6, rtol=1e-4), step
        assert not torch.allclose(grads, d_grads(StepConfig(fuse_d=True), step)[0], atol=1e-6)
