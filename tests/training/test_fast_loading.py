"""The loader levers (decode-once cache, jitter on the training device) change no number: a run
with them makes the same weights as a run without."""
import dataclasses
import json

import pytest
import torch
from safetensors.torch import load_file

from pix2pix.config import TrainConfig
from pix2pix.data.cache import cache_folder, read_index
from pix2pix.training import train


def _cfg(root, out, **data) -> TrainConfig:
    cfg = TrainConfig()
    return dataclasses.replace(
        cfg, model=dataclasses.replace(cfg.model, generator="unet_128", base_channels=8, d_base_channels=8),
        data=dataclasses.replace(cfg.data, root=str(root), image_size=128, **data), out=str(out),
        batch_size=2, max_steps=3, log_every=3, sample_every=100, checkpoint_every=100, seed=5,
        device="cpu", precision="fp32", tensorboard="off")


def _weights(run) -> dict:
    path = json.loads((run / "latest.json").read_text())["path"]
    return load_file(str(run / path / "model" / "generator.safetensors"))


@pytest.mark.usefixtures("one_thread")
def test_cache_and_device_jitter_train_the_same_weights(tiny_dataset, tmp_path):
    plain = _weights(train(_cfg(tiny_dataset, tmp_path / "plain", cache="off", device_jitter="off"),
                           progress=False))
    # One worker process: the cache is mapped again there, and uint8 items cross the process gap.
    fast_run = train(_cfg(tiny_dataset, tmp_path / "fast", cache="on", device_jitter="on", workers=1),
                     progress=False)
    index = read_index(cache_folder(tiny_dataset, "train"))
    assert index is not None and len(index["entries"]) == 4
    fast = _weights(fast_run)
    assert plain.keys() == fast.keys()
    assert all(torch.equal(plain[k], fast[k]) for k in plain)
