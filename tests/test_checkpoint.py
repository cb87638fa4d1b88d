import json

import pytest
import torch

from pix2pix.checkpoint import (PretrainedInfo, latest_checkpoint, load_pretrained, read_info,
                                save_pretrained, save_training_checkpoint)
from pix2pix.config import ModelConfig
from pix2pix.models import build_discriminator, build_generator


@pytest.mark.parametrize("norm", ["batch", "instance"])
def test_pretrained_round_trip_is_bit_exact(tmp_path, norm):
    cfg = ModelConfig(generator="unet_128", base_channels=8, norm=norm, in_channels=1)
    g = build_generator(cfg)
    # Make running statistics non-trivial so buffers are checked too.
    g.train()
    g(torch.randn(2, 1, 128, 128))
    save_pretrained(g, PretrainedInfo(model=cfg, direction="BtoA", image_size=128), tmp_path / "m")
    g2, info = load_pretrained(tmp_path / "m")
    assert info.model == cfg and info.direction == "BtoA" and info.image_size == 128
    s1, s2 = g.state_dict(), g2.state_dict()
    assert s1.keys() == s2.keys()
    assert all(torch.equal(s1[k], s2[k]) for k in s1)
    x = torch.randn(1, 1, 128, 128)
    assert torch.equal(g.eval()(x), g2.eval()(x))


def test_config_json_is_readable_and_versioned(tmp_path):
    cfg = ModelConfig(generator="resnet_6blocks", base_channels=4)
    save_pretrained(build_generator(cfg), PretrainedInfo(model=cfg, palette=[[0, 0, 0]]), tmp_path)
    raw = json.loads((tmp_path / "config.json").read_text())
    assert raw["format_version"] == 1 and raw["model"]["generator"] == "resnet_6blocks"
    assert read_info(tmp_path).palette == [[0, 0, 0]]
    raw["format_version"] = 99
    (tmp_path / "config.json").write_text(json.dumps(raw))
    with pytest.raises(ValueError, match="format_version 99"):
        read_info(tmp_path)


def test_missing_model_is_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_pretrained(tmp_path / "nothing")
    with pytest.raises(FileNotFoundError, match="is not a model"):
        load_pretrained(tmp_path)


def test_training_checkpoint_atomic_and_pruned(tmp_path):
    cfg = ModelConfig(generator="unet_128", base_channels=4, d_base_channels=4)
    g, d = build_generator(cfg), build_discriminator(cfg)
    info = PretrainedInfo(model=cfg)
    for step in (10, 20, 30):
        save_training_checkpoint(tmp_path, step=step, generator=g, discriminator=d, info=info,
                                 state={"step": step}, keep=2)
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert names == ["step_00000020", "step_00000030"]
    assert latest_checkpoint(tmp_path).name == "step_00000030"
    # A crash half-way through the next write leaves only a hidden temp dir: latest still loads.
    (tmp_path / "checkpoints" / ".step_00000040.tmp").mkdir()
    assert latest_checkpoint(tmp_path).name == "step_00000030"
    g2, _ = load_pretrained(tmp_path)  # a run dir resolves to its latest checkpoint's model
    assert torch.equal(g2.state_dict()["down.0.weight"], g.state_dict()["down.0.weight"])


def test_state_loads_with_weights_only(tmp_path):
    cfg = ModelConfig(generator="unet_128", base_channels=4, d_base_channels=4)
    path = save_training_checkpoint(tmp_path, step=1, generator=build_generator(cfg),
                                    discriminator=build_discriminator(cfg), info=PretrainedInfo(model=cfg),
                                    state={"step": 1, "rng": {"torch": torch.get_rng_state()}})
    state = torch.load(path / "state.pt", weights_only=True)
    assert state["step"] == 1
