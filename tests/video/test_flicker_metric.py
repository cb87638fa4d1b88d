"""The cheap flicker metric (flow at a reduced working size, one frame pair in FLICKER_EVERY) against
the full-resolution metric (flow at full size, every pixel, every pair) on real clips at 256² and 512²:
the camera pan, the static camera, and the pan through --temporal blend."""
from __future__ import annotations

import numpy as np
import pytest

from pix2pix.inference.translator import Translator
from pix2pix.video.flow import (FLICKER_EVERY, FLICKER_SIZE, Motion, MotionTracker, WarpingError,
                                warping_error, working_shape)
from pix2pix.video.stream import VideoStats, translate_frames, translate_video
from pix2pix.video.temporal import TemporalBlend

from .camera import render_path
from .clips import pan_path, read_clip, static_path, write_clip

TOLERANCE = 0.05


def full_metric(inputs: list[np.ndarray], outputs: list[np.ndarray], **tracker) -> tuple[float, float]:
    """(input, output) warping error, flow at full resolution on every pair unless ``tracker``
    says otherwise; inputs uint8, outputs [0, 1]."""
    tracker = MotionTracker(**({"working_size": 0, "every": 1} | tracker))
    e_in, e_out, prev_in, prev_out = WarpingError(), WarpingError(), None, None
    for a, o in zip(inputs, outputs):
        motion = tracker(a)
        cur = a.astype(np.float32) / 255
        e_in.add(cur, prev_in, motion)
        e_out.add(o, prev_out, motion)
        prev_in, prev_out = cur, o
    return e_in.mean, e_out.mean


@pytest.fixture(scope="module")
def clips(world_pair, map_model, tmp_path_factory) -> dict:
    """{(size, kind): (decoded input frames, stats, outputs, full-resolution (input, output)
    metric)} for the pan and the static camera at
    256² and 512², translated by the stream with the default (cheap) metric, and the pan with
    --temporal blend; H.264-encoded (crf 10) and decoded first, as `translate` sees a clip."""
    import torch

    sat, _ = world_pair
    folder = tmp_path_factory.mktemp("flicker")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    tr = Translator.from_pretrained(map_model, device="cpu", backend="eager")
    out = {}
    for size in (256, 512):
        for kind, path in (("pan", pan_path(24)), ("static", static_path(12))):
            clip = write_clip(folder / f"{kind}{size}.mp4", list(render_path(sat, path, size, size)), audio=False)
            frames, _, _ = read_clip(clip)
            runs = [(kind, None)] + ([("blend", TemporalBlend(0.5))] if kind == "pan" else [])
            for name, temporal in runs:
                stats = VideoStats()
                outputs = [o for _, o in translate_frames(tr, frames, temporal=temporal, stats=stats)]
                out[size, name] = frames, stats, outputs, full_metric(frames, outputs)
    torch.set_num_threads(threads)
    return out


@pytest.mark.parametrize("size", [256, 512])
def test_cheap_metric_within_5_percent_of_full_resolution(clips, size):
    frames, stats, outputs, (full_in, full_out) = clips[size, "pan"]
    hw = working_shape(size, size, FLICKER_SIZE)
    assert hw == (FLICKER_SIZE, FLICKER_SIZE)  # the test measures a reduced flow, not the full one
    assert (stats.flicker_size, stats.flicker_every) == (FLICKER_SIZE, FLICKER_EVERY)
    assert stats.flicker_method == (f"one frame pair in {FLICKER_EVERY}, flow at {FLICKER_SIZE}x{FLICKER_SIZE}, "
                                    f"error at full resolution on one random pixel in {(size // FLICKER_SIZE) ** 2}")
    # One pair in FLICKER_EVERY was measured: the first, then one in each following run.
    pairs = len(frames) - 1
    assert stats.input_error.count == stats.output_error.count
    assert stats.input_error.count in (pairs // FLICKER_EVERY, -(-pairs // FLICKER_EVERY))
    print(f"{size}² pan: input {stats.input_error.mean:.5f} vs full {full_in:.5f}, "
          f"output {stats.output_error.mean:.5f} vs full {full_out:.5f}")
    assert stats.input_error.mean == pytest.approx(full_in, rel=TOLERANCE)
    assert stats.output_error.mean == pytest.approx(full_out, rel=TOLERANCE)
    # The reduced flow alone (every pair) is within the same bound: the sampling of pairs is not
    # hiding a biased flow.
    every_in, every_out = full_metric(frames, outputs, working_size=FLICKER_SIZE, every=1)
    assert every_in == pytest.approx(full_in, rel=TOLERANCE)
    assert every_out == pytest.approx(full_out, rel=TOLERANCE)


@pytest.mark.parametrize("size", [256, 512])
def test_cheap_metric_on_the_blended_pan(clips, size):
    frames, stats, outputs, (full_in, full_out) = clips[size, "blend"]
    # The blend needs motion at every pixel of every frame, so the stream's metric uses it.
    assert (stats.flicker_size, stats.flicker_every) == (0, 1)
    assert stats.flicker_method == f"every frame pair, flow at full resolution {size}x{size}"
    assert stats.input_error.count == len(frames) - 1
    assert stats.output_error.mean == pytest.approx(full_out, rel=1e-6)
    cheap_in, cheap_out = full_metric(frames, outputs, working_size=FLICKER_SIZE, every=FLICKER_EVERY)
    print(f"{size}² blended pan: output {cheap_out:.5f} (cheap) vs {full_out:.5f} (full)")
    assert cheap_in == pytest.approx(full_in, rel=TOLERANCE)
    assert cheap_out == pytest.approx(full_out, rel=TOLERANCE)
    # And the blend did its job: less flicker than the plain translation.
    assert full_out < 0.7 * clips[size, "pan"][1].output_error.mean


@pytest.mark.parametrize("size", [256, 512])
def test_static_camera(clips, size):
    frames, stats, outputs, (full_in, full_out) = clips[size, "static"]
    pan_full = clips[size, "pan"][3]
    print(f"{size}² static: input {stats.input_error.mean:.2e} vs full {full_in:.2e}, "
          f"output {stats.output_error.mean:.2e} vs full {full_out:.2e}")
    # Both near zero: the encoder's noise. Relative to that noise 5% means nothing (one frame pair
    # more or less changes it severalfold); the bound is 5% of the moving clip's error.
    for cheap, full, pan in ((stats.input_error.mean, full_in, pan_full[0]),
                             (stats.output_error.mean, full_out, pan_full[1])):
        assert cheap < 5e-4 and full < 5e-4
        assert abs(cheap - full) < TOLERANCE * pan


def test_pairs_sampled_once_per_run_and_repeatably(pan):
    frames = pan["frames"][:23]

    def measured(every: int, seed: int) -> list[int]:
        tracker = MotionTracker(working_size=64, every=every, seed=seed)
        return [i for i, f in enumerate(frames) if tracker(f) is not None]

    assert measured(1, 0) == list(range(1, 23))
    for every in (2, 4, 5):
        got = measured(every, 0)
        assert got == measured(every, 0)  # repeatable
        assert got[0] == 1  # the first pair always, so a short clip has a figure
        runs = [(i - 1) // every for i in got]
        # One in each run of `every` later frames; the last run, cut short, may have none.
        assert runs == list(range(len(got))) and len(got) in (22 // every, -(-22 // every))
    assert measured(4, 0) != measured(4, 1)  # at random within the runs, not every k-th


def test_reduced_motion_upsamples_to_the_full_frame(pan):
    a, b = pan["frames"][10], pan["frames"][11]
    tracker = MotionTracker(working_size=64)
    tracker(a)
    small = tracker(b)
    assert small.backward.shape == (64, 64, 2) and small.frame_shape == (128, 128)
    full = small.full()
    assert full.backward.shape == (128, 128, 2) and full.mask.shape == (128, 128) and not full.reduced
    # Flow values are scaled to full-resolution pixels: the pan moves ~1.7 px per frame at 128 px.
    exact = MotionTracker(working_size=0)
    exact(a)
    ref = exact(b)
    assert np.median(np.abs(full.backward - ref.backward)[ref.mask & full.mask]) < 0.25
    assert warping_error(b / 255, a / 255, full) == pytest.approx(warping_error(b / 255, a / 255, ref), rel=0.1)


@pytest.mark.parametrize("kw,option", [({"working_size": -1}, "--flicker-size -1"),
                                       ({"working_size": 1}, "--flicker-size 1"),
                                       ({"every": 0}, "--flicker-every 0")])
def test_bad_settings_name_the_option(kw, option, pan, tmp_path):
    with pytest.raises(ValueError, match=option):
        MotionTracker(**kw)
    # The stream refuses them before it makes any file.
    stream_kw = {"flicker_size": kw.get("working_size", FLICKER_SIZE), "flicker_every": kw.get("every", 1)}
    with pytest.raises(ValueError, match=option):
        translate_video(None, pan["input"], tmp_path / "out" / "pan.mp4", **stream_kw)
    assert not (tmp_path / "out").exists()


def test_full_resolution_motion_is_unchanged():
    # A Motion built at full resolution (as tests and callers do) measures every pixel.
    rng = np.random.default_rng(0)
    prev = rng.random((16, 16, 3)).astype(np.float32)
    cur = np.roll(prev, 1, axis=1)
    b = np.zeros((16, 16, 2), np.float32)
    b[..., 0] = -1.0
    mask = np.ones((16, 16), bool)
    mask[:, 0] = False
    assert warping_error(cur, prev, Motion(b, mask)) == pytest.approx(0.0, abs=1e-6)
    assert warping_error(cur, prev, Motion(np.zeros_like(b), mask)) == pytest.approx(
        np.abs(cur - prev)[:, 1:].mean(), rel=1e-5)
