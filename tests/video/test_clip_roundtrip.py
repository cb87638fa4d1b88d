"""`pix2pix translate` on real clips: frames, timing, size, rotation and audio survive; containers;
frame sequences; the flicker metric against the camera's known motion; --temporal blend."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from pix2pix.inference.translator import Translator
from .camera import exact_backward_flow
from pix2pix.video.evaluate import evaluate_clip
from pix2pix.video.flow import FLICKER_EVERY, Motion, consistent, grid, warping_error
from pix2pix.video.stream import translate_frames, translate_video
from pix2pix.video.temporal import TemporalBlend

from .clips import SIZE, read_clip, write_clip


# Tiny models gain nothing from two torch threads, and on a busy machine OpenMP barriers make them slow.
ONE_THREAD = {**os.environ, "OMP_NUM_THREADS": "1"}


def cli(*args, check=True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "pix2pix", *map(str, args)], capture_output=True,
                          text=True, timeout=300, env=ONE_THREAD)
    if check:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_cli_round_trip_keeps_frames_timing_size_and_audio(map_model, pan, tmp_path):
    res = cli("translate", "--model", map_model, pan["input"], "--out", tmp_path, "--device", "cpu",
              "--backend", "eager", "--no-progress")
    out = tmp_path / "pan.mp4"
    frames_in, times_in, facts_in = read_clip(pan["input"])
    frames_out, times_out, facts_out = read_clip(out)
    assert len(frames_out) == len(frames_in) == 36
    assert times_out == pytest.approx(times_in, abs=1e-6)
    assert facts_out["rate"] == pytest.approx(facts_in["rate"])
    assert (facts_out["width"], facts_out["height"]) == (SIZE, SIZE)
    assert facts_out["codec"] == "h264" and "libx264" in res.stderr  # the encoder is named in the log
    assert facts_out["audio"] == facts_in["audio"] == [("aac", 16000)]
    assert facts_out["audio_packets"] == facts_in["audio_packets"]  # copied, not re-encoded
    # It is the model's translation, not a copy: the frames match the Translator's on the decoded input.
    tr = Translator.from_pretrained(map_model, device="cpu")
    mine = (tr.translate_array(frames_in[10].astype(np.float32) / 255) * 255)
    assert np.abs(frames_out[10].astype(np.float32) - mine).mean() < 3.0
    assert np.abs(frames_out[10].astype(np.float32) - frames_in[10]).mean() > 20.0
    assert "flicker (warping error" in res.stdout and "input clip" in res.stdout
    assert f"(one frame pair in {FLICKER_EVERY}, flow at full resolution 128x128)" in res.stdout  # how it sampled


def test_variable_frame_rate_rotation_and_padding(map_model, pan, tmp_path):
    # 96 x 64 stored, shown rotated by 90 degrees; irregular timestamps.
    frames = [f[:64, :96].copy() for f in pan["frames"][:8]]
    pts = [0, 40, 80, 200, 240, 400, 420, 700]
    src = write_clip(tmp_path / "vfr.mov", frames, pts=pts, rotation=90, audio=False)
    cli("translate", "--model", map_model, src, "--out", tmp_path / "out", "--device", "cpu",
        "--backend", "eager", "--no-progress", "--no-flicker")
    out_frames, times, facts = read_clip(tmp_path / "out" / "vfr.mov")
    assert times == pytest.approx([p / 1000 for p in pts], abs=1e-6)
    assert (facts["width"], facts["height"], facts["rotation"]) == (96, 64, 90)
    # The network saw the frames upright (as shown), then they were stored back as they came.
    tr = Translator.from_pretrained(map_model, device="cpu")
    decoded, _, _ = read_clip(src)
    upright = np.rot90(decoded[3], 1).astype(np.float32) / 255
    as_shown = np.rot90(tr.translate_array(upright), -1) * 255
    as_stored = tr.translate_array(decoded[3].astype(np.float32) / 255) * 255
    got = out_frames[3].astype(np.float32)
    assert np.abs(got - as_shown).mean() < 3.0 < np.abs(got - as_stored).mean()


@pytest.mark.parametrize("suffix,codec,expect", [(".webm", "libvpx-vp9", "vp9"), (".gif", "gif", "gif")])
def test_other_containers(map_model, pan, tmp_path, suffix, codec, expect):
    src = write_clip(tmp_path / f"clip{suffix}", [f[:64, :64].copy() for f in pan["frames"][:6]],
                     codec=codec, audio=False)
    tr = Translator.from_pretrained(map_model, device="cpu", backend="eager")
    stats = translate_video(tr, src, tmp_path / "out" / src.name)
    frames, _, facts = read_clip(tmp_path / "out" / src.name)
    assert stats.frames == len(frames) == 6 and facts["codec"] == expect
    assert (facts["width"], facts["height"]) == (64, 64)


def test_sequence_folder_in_name_order(map_model, pan, tmp_path):
    from PIL import Image

    folder = tmp_path / "frames"
    folder.mkdir()
    for i in (1, 2, 10, 11):  # name order puts 10 before 2; number order must not
        Image.fromarray(pan["frames"][i]).save(folder / f"{i}.png")
    res = cli("translate", "--model", map_model, "--sequence", folder, "--out", tmp_path / "out",
              "--device", "cpu", "--backend", "eager", "--no-progress")
    assert sorted(p.name for p in (tmp_path / "out" / "frames").iterdir()) == ["1.png", "10.png", "11.png", "2.png"]
    tr = Translator.from_pretrained(map_model, device="cpu")
    got = np.asarray(Image.open(tmp_path / "out" / "frames" / "10.png")).astype(np.float32)
    assert np.abs(got - tr.translate_array(pan["frames"][10].astype(np.float32) / 255) * 255).mean() < 1.0
    # The flow runs 1 -> 2 -> 10 -> 11: two big jumps, so the input's own warping error is high.
    assert "input clip" in res.stdout


def _exact_motion(path, i: int) -> Motion:
    b = exact_backward_flow(path[i - 1], path[i], SIZE, SIZE)
    src = grid(SIZE, SIZE) + b
    inside = (src[..., 0] >= 0) & (src[..., 0] <= SIZE - 1) & (src[..., 1] >= 0) & (src[..., 1] <= SIZE - 1)
    return Motion(b, inside)


def test_warping_error_zero_when_static_and_true_to_the_camera_when_panning(map_model, pan, static_clip, tmp_path):
    tr = Translator.from_pretrained(map_model, device="cpu", backend="eager")
    still = translate_video(tr, static_clip, tmp_path / "static.mp4")
    moving = translate_video(tr, pan["input"], tmp_path / "pan.mp4")
    assert still.input_error.mean < 5e-4 and still.output_error.mean < 5e-4
    assert moving.output_error.mean > 10 * still.output_error.mean
    # The same errors with the camera's exact flow in place of DIS's estimate.
    frames_in, _, _ = read_clip(pan["input"])
    frames_out, _, _ = read_clip(tmp_path / "pan.mp4")
    exact_in = np.mean([warping_error(frames_in[i] / 255, frames_in[i - 1] / 255, _exact_motion(pan["path"], i))
                        for i in range(1, len(frames_in))])
    exact_out = np.mean([warping_error(frames_out[i] / 255, frames_out[i - 1] / 255, _exact_motion(pan["path"], i))
                         for i in range(1, len(frames_out))])
    measured_out = evaluate_clip(tmp_path / "pan.mp4", flow_from=pan["input"]).warping_error.mean
    print(f"pan warping error: input {moving.input_error.mean:.5f} (exact flow {exact_in:.5f}); "
          f"output file {measured_out:.5f} (exact flow {exact_out:.5f})")
    assert moving.input_error.mean == pytest.approx(exact_in, rel=0.10)
    assert measured_out == pytest.approx(exact_out, rel=0.15)


def test_temporal_blend_cuts_flicker_without_hurting_accuracy(map_model, pan, tmp_path):
    tr = Translator.from_pretrained(map_model, device="cpu", backend="eager")
    plain = translate_video(tr, pan["input"], tmp_path / "plain.mp4", crf=10)
    blend = translate_video(tr, pan["input"], tmp_path / "blend.mp4", crf=10, temporal=TemporalBlend(0.5))
    s_plain = evaluate_clip(tmp_path / "plain.mp4", flow_from=pan["input"], target=pan["target"]).summary()
    s_blend = evaluate_clip(tmp_path / "blend.mp4", flow_from=pan["input"], target=pan["target"]).summary()
    reduction = 1 - blend.output_error.mean / plain.output_error.mean
    file_reduction = 1 - s_blend["warping_error"] / s_plain["warping_error"]
    l1_change = s_blend["l1"] / s_plain["l1"] - 1
    print(f"blend 0.5: warping error {plain.output_error.mean:.5f} -> {blend.output_error.mean:.5f} "
          f"({reduction:.1%} less; encoded files {s_plain['warping_error']:.5f} -> "
          f"{s_blend['warping_error']:.5f}, {file_reduction:.1%} less); L1 vs target "
          f"{s_plain['l1']:.5f} -> {s_blend['l1']:.5f} ({l1_change:+.2%})")
    assert reduction >= 0.30
    assert file_reduction >= 0.20  # the codec adds its own, unfilterable, frame-to-frame noise
    assert l1_change <= 0.03


def test_frame_iterator_tiles_and_pads_like_images(map_model, pan, one_thread):
    tr = Translator.from_pretrained(map_model, device="cpu", backend="eager")
    frames = [np.concatenate([f, f[:, :72]], axis=1)[:100] for f in pan["frames"][:5]]  # 200 x 100 px
    got = list(translate_frames(tr, frames, tile=128, overlap=32, batch_size=2))
    assert [f.index for f, _ in got] == [0, 1, 2, 3, 4]
    for (f, out), src in zip(got, frames):
        want = tr.translate_array(src.astype(np.float32) / 255, tile=128, overlap=32)
        assert out.shape == (100, 200, 3) and np.abs(out - want).max() < 1e-5
