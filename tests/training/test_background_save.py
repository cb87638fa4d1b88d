"""Cadence checkpoints are written in a thread from a snapshot: they hold that step's weights."""
import pytest
import torch
from safetensors.torch import load_file

from pix2pix.config import DataConfig, ModelConfig, TrainConfig
from pix2pix.training import train
from pix2pix.training.background import BackgroundWriter


def small_cfg(root, out, **kw) -> TrainConfig:
    return TrainConfig(model=ModelConfig(generator="unet_128", base_channels=8, d_base_channels=8),
                       data=DataConfig(root=str(root), image_size=128), out=str(out), batch_size=2,
                       epochs=2, decay_epochs=2, log_every=1, sample_every=100, seed=3,
                       tensorboard="off", **kw)


@pytest.mark.usefixtures("one_thread")
def test_background_checkpoint_holds_the_weights_of_its_step(tiny_dataset, tmp_path):
    # Steps 3 and 4 run while step 2's checkpoint is written from its snapshot.
    long = train(small_cfg(tiny_dataset, tmp_path / "long", max_steps=4, checkpoint_every=2,
                           keep_checkpoints=3), progress=False)
    short = train(small_cfg(tiny_dataset, tmp_path / "short", max_steps=2), progress=False)
    at2 = long / "checkpoints" / "step_00000002"
    g_bg = load_file(str(at2 / "model" / "generator.safetensors"))
    g_fg = load_file(str(short / "checkpoints" / "step_00000002" / "model" / "generator.safetensors"))
    assert g_bg.keys() == g_fg.keys()
    assert all(torch.equal(g_bg[k], g_fg[k]) for k in g_bg)
    state = torch.load(at2 / "state.pt", weights_only=True)
    assert state["step"] == 2
    g4 = load_file(str(long / "checkpoints" / "step_00000004" / "model" / "generator.safetensors"))
    assert not all(torch.equal(g4[k], g_bg[k]) for k in g4)  # training did go on


def test_a_failed_background_write_is_raised_not_lost():
    writer = BackgroundWriter()
    writer.submit(lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        writer.wait()
    writer.submit(lambda: "ok")
    assert writer.wait() == "ok"
    with pytest.raises(ZeroDivisionError):
        with writer.joined():
            writer.submit(lambda: 1 / 0)
