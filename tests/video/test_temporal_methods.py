"""Every temporal method of the table: built by make_temporal, run by the stream, listed by the CLI."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from pix2pix.checkpoint import PretrainedInfo
from pix2pix.cli import build_parser
from pix2pix.config import ModelConfig
from pix2pix.inference.translator import Translator
from pix2pix.models import build_generator
from pix2pix.video.stream import translate_frames
from pix2pix.video.temporal import TEMPORAL_METHODS, make_temporal

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def translator() -> Translator:
    torch.manual_seed(0)
    cfg = ModelConfig(generator="unet_128", base_channels=4)
    return Translator(build_generator(cfg), PretrainedInfo(model=cfg, image_size=128), device="cpu")


def panning_frames(n: int = 4, size: int = 128) -> list[np.ndarray]:
    """A textured scene moving 2 px right per frame: flow is reliable almost everywhere."""
    rng = np.random.default_rng(0)
    scene = (rng.random((size // 8, size // 8 + n, 3)) * 255).astype(np.uint8)
    scene = np.kron(scene, np.ones((8, 8, 1), np.uint8))
    return [np.ascontiguousarray(scene[:, 16 - 2 * i:16 - 2 * i + size]) for i in range(n)]


@pytest.mark.parametrize("name", sorted(TEMPORAL_METHODS))
def test_temporal_method_runs_in_the_stream(name, translator):
    method = TEMPORAL_METHODS[name]
    assert method.description
    filt = make_temporal(name, 0.5)
    # Stateful filters: each clip gets a fresh one.
    assert filt is None or make_temporal(name, 0.5) is not filt
    frames = panning_frames()
    plain = [out for _, out in translate_frames(translator, frames, batch_size=2, measure=False)]
    got = [out for _, out in translate_frames(translator, frames, batch_size=2, temporal=filt,
                                              measure=False)]
    assert [g.shape for g in got] == [(128, 128, 3)] * len(frames)
    assert all(0 <= g.min() and g.max() <= 1 for g in got)
    np.testing.assert_array_equal(got[0], plain[0])  # no previous frame: the network's output
    if filt is None:
        assert all(np.array_equal(g, p) for g, p in zip(got, plain))


@pytest.mark.parametrize("name", sorted(TEMPORAL_METHODS))
def test_cli_lists_every_temporal_method(name):
    args = build_parser().parse_args(["translate", "--model", "m", "x.mp4", "--out", "o",
                                      "--temporal", name])
    assert args.temporal == name
    with pytest.raises(ValueError, match="not one of"):
        make_temporal(name + "-nope", 0.5)


def test_stream_takes_any_filter_of_the_protocol(translator):
    """The stream calls the filter with (input, output, motion) per frame, in order, and keeps
    what it returns: a method need not be a TemporalBlend."""
    calls = []

    def darken(inp, out, motion):
        calls.append((inp.shape, out.shape, motion is None))
        return out * 0.5

    frames = panning_frames(3)
    plain = [out for _, out in translate_frames(translator, frames, measure=False)]
    got = [out for _, out in translate_frames(translator, frames, temporal=darken, measure=False)]
    assert calls == [((128, 128, 3), (128, 128, 3), i == 0) for i in range(3)]
    assert all(np.allclose(g, p * 0.5) for g, p in zip(got, plain))
