"""Clips and frame folders as a user gives them: a clip or folder translated over itself, a frame
folder named ".", a broken frame in a folder of frames, a one-frame clip's flicker figure."""
from __future__ import annotations

import json

import av
import numpy as np
import pytest
from PIL import Image

from pix2pix import Translator
from pix2pix.checkpoint import PretrainedInfo, save_pretrained
from pix2pix.cli import main
from pix2pix.config import ModelConfig
from pix2pix.models import build_generator
from pix2pix.util.imageio import ImageReadError
from pix2pix.video import translate_sequence, translate_video
from pix2pix.video.io import VideoError

from .clips import read_clip, write_clip
from .test_clip_failures import texture_frames


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    cfg = ModelConfig(generator="unet_128", base_channels=8)
    return save_pretrained(build_generator(cfg), PretrainedInfo(model=cfg),
                           tmp_path_factory.mktemp("m") / "model")


def frame_folder(folder, n: int):
    folder.mkdir(parents=True, exist_ok=True)
    for i, img in enumerate(texture_frames(n, 64)):
        Image.fromarray(img).save(folder / f"f{i + 1}.png")
    return folder


def test_a_clip_or_frame_folder_is_never_written_over_itself(model, tmp_path):
    clip = write_clip(tmp_path / "shot.mp4", list(texture_frames(6, 64)), audio=False)
    data = clip.read_bytes()
    t = Translator.from_pretrained(model, device="cpu")
    with pytest.raises(VideoError, match="would overwrite it; give another --out folder"):
        translate_video(t, clip, tmp_path / "shot.mp4")
    assert clip.read_bytes() == data
    frames = frame_folder(tmp_path / "frames", 3)
    with pytest.raises(VideoError, match="would overwrite it"):
        translate_sequence(t, frames, tmp_path / "frames")


def test_a_frame_folder_given_as_dot_goes_into_its_own_named_folder(model, tmp_path, monkeypatch, capsys):
    frames = frame_folder(tmp_path / "plate", 3)
    monkeypatch.chdir(frames)
    assert main(["translate", "--model", str(model), "--sequence", ".", "--out", str(tmp_path / "out"),
                 "--device", "cpu", "--backend", "eager", "--no-progress"]) == 0
    assert sorted(p.name for p in (tmp_path / "out" / "plate").iterdir()) == ["f1.png", "f2.png", "f3.png"]
    # And "." with --out .. is the folder itself: refused, not written over.
    before = {p.name: p.read_bytes() for p in frames.iterdir()}
    assert main(["translate", "--model", str(model), "--sequence", ".", "--out", "..",
                 "--device", "cpu", "--backend", "eager", "--no-progress"]) == 2
    assert "would overwrite it" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in frames.iterdir()} == before


def test_a_broken_frame_in_a_folder_keeps_the_frames_before_it(model, tmp_path):
    frames = frame_folder(tmp_path / "frames", 6)
    (frames / "f4.png").write_bytes(b"not a png")
    t = Translator.from_pretrained(model, device="cpu")
    with pytest.raises(ImageReadError, match=r"f4\.png: .*; the 3 frames before it are in"):
        translate_sequence(t, frames, tmp_path / "out", batch_size=4)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["f1.png", "f2.png", "f3.png"]


def test_a_one_frame_clip_says_flicker_was_not_measured_and_writes_valid_json(model, tmp_path, capsys):
    clip = write_clip(tmp_path / "still.mp4", list(texture_frames(1, 64)), audio=False)
    assert main(["translate", "--model", str(model), str(clip), "--out", str(tmp_path / "out"),
                 "--device", "cpu", "--backend", "eager", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "flicker: not measured (a clip of 1 frame(s) has no frame pair)" in out and "nan" not in out
    assert len(read_clip(tmp_path / "out" / "still.mp4")[0]) == 1
    scores = tmp_path / "scores.json"
    assert main(["evaluate-video", str(tmp_path / "out" / "still.mp4"), "--input", str(clip),
                 "--target", str(clip), "--json", str(scores)]) == 0
    assert "nan" not in capsys.readouterr().out
    # Strict JSON, as JSON.parse or jq read it: NaN is not JSON.
    summary = json.loads(scores.read_text(), parse_constant=lambda c: pytest.fail(f"{c} in the JSON"))
    assert summary["summary"]["warping_error"] is None and summary["summary"]["frames"] == 1


def test_an_encoder_the_container_cannot_hold_is_named_and_the_earlier_output_stays(model, tmp_path):
    clip = write_clip(tmp_path / "shot.mp4", list(texture_frames(3, 64)), audio=False)
    t = Translator.from_pretrained(model, device="cpu")
    dst = tmp_path / "out" / "shot.mp4"
    translate_video(t, clip, dst)
    before = dst.read_bytes()
    with pytest.raises(VideoError, match=r"shot\.mp4: the gif encoder cannot write a \.mp4 file .*--codec"):
        translate_video(t, clip, dst, codec="gif")
    assert dst.read_bytes() == before


def test_a_folder_of_clips_says_its_clips_are_left_out(model, tmp_path, capsys):
    shots = tmp_path / "shots"
    shots.mkdir()
    write_clip(shots / "a.mp4", list(texture_frames(2, 64)), audio=False)
    assert main(["translate", "--model", str(model), str(shots), "--out", str(tmp_path / "out"),
                 "--device", "cpu", "--backend", "eager"]) == 2
    err = capsys.readouterr().err
    assert f"{shots} holds no images" in err and f"give clips as files, e.g. {shots / 'a.mp4'}" in err


def test_frames_of_another_size_given_to_the_api_are_named_after_the_frames_before_them(model):
    from pix2pix.video import translate_frames

    frames = [*texture_frames(3, 64), next(iter(texture_frames(1, 96)))]
    t = Translator.from_pretrained(model, device="cpu")
    done = []
    with pytest.raises(ValueError, match=r"frame 3 is 96x96 px but the first frame is 64x64"):
        for _, out in translate_frames(t, frames, batch_size=2):
            done.append(out.shape)
    assert done == [(64, 64, 3)] * 3  # the frames before it still came out
