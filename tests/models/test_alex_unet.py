"""The U-Net with the pretrained AlexNet encoder (unet_alex_*): a fresh run starts from the shipped
ImageNet weights exactly, and loading them draws no random numbers."""
import pytest
import torch

from pix2pix.checkpoint import load_training_checkpoint
from pix2pix.config import DataConfig, ModelConfig, TrainConfig
from pix2pix.models import GENERATORS, build_generator
from pix2pix.models.alex_unet import as_rgb
from pix2pix.training import train
from pix2pix.training.perceptual import load_pretrained_encoder, load_shipped_backbone

pytestmark = pytest.mark.usefixtures("one_thread")
SMALL = ModelConfig(generator="unet_alex_128", base_channels=8, d_base_channels=8)


def test_the_registry_names_the_shipped_backbone():
    assert GENERATORS["unet_alex_128"].backbone == GENERATORS["unet_alex_256"].backbone == "alex"
    assert GENERATORS["unet_128"].backbone is None


def test_loading_copies_alexnet_exactly_and_leaves_the_seed_stream_alone():
    g = build_generator(SMALL)
    before = torch.random.get_rng_state()
    load_pretrained_encoder(g, "alex")
    assert torch.equal(torch.random.get_rng_state(), before)
    lpips = load_shipped_backbone("alex")
    for mine, theirs in zip(g.alex, lpips.convs):
        assert torch.equal(mine.weight, theirs.weight) and torch.equal(mine.bias, theirs.bias)


def test_a_fresh_run_starts_from_alexnet_and_a_random_encoder_would_not(tiny_dataset, tmp_path):
    cfg = TrainConfig(model=SMALL, data=DataConfig(root=str(tiny_dataset), image_size=128), out=str(tmp_path / "run"),
                      epochs=1, decay_epochs=1, max_steps=1, device="cpu", tensorboard="off", sample_every=100)
    run = train(cfg, progress=False)
    _, g_state, _, _ = load_training_checkpoint(run)
    convs = load_shipped_backbone("alex").convs
    # One Adam step moves a weight by about lr (2e-4) at most; the N(0, 0.02) init is far away.
    moved = max((g_state[f"alex.{i}.weight"] - c.weight).abs().max().item() for i, c in enumerate(convs))
    assert moved <= 2e-4 * 1.05
    random = build_generator(SMALL).alex[0].weight
    assert (random - convs[0].weight).abs().max().item() > 0.05


def test_a_four_channel_input_feeds_its_first_three_to_alexnet():
    cfg = ModelConfig(generator="unet_alex_128", base_channels=4, in_channels=4, out_channels=3)
    g = build_generator(cfg).eval()
    x = torch.rand(1, 4, 128, 128) * 2 - 1
    assert torch.equal(as_rgb(x), x[:, :3]) and g(x).shape == (1, 3, 128, 128)
    gray = build_generator(ModelConfig(generator="unet_alex_128", base_channels=4, in_channels=1)).eval()
    one = torch.rand(1, 1, 128, 128)
    assert torch.equal(as_rgb(one), one.expand(-1, 3, -1, -1)) and gray(one).shape == (1, 3, 128, 128)
