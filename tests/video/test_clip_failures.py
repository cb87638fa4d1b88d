"""Clips that go wrong: not a video, no video stream, a broken frame, Ctrl-C; and memory that does
not grow with the clip's length."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest

from .clips import read_clip, write_clip


# Tiny models gain nothing from two torch threads, and on a busy machine OpenMP barriers make them slow.
ONE_THREAD = {**os.environ, "OMP_NUM_THREADS": "1"}


def cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pix2pix", *map(str, args)], capture_output=True,
                          text=True, timeout=300, env=ONE_THREAD)


def texture_frames(n: int, size: int, seed: int = 0, grain: int = 0):
    """A blocky random texture scrolling one pixel per frame, with fresh noise of +-``grain``."""
    rng = np.random.default_rng(seed)
    tex = np.kron(rng.integers(0, 256, (size // 8 * 2, size // 8 * 2, 3), dtype=np.uint8),
                  np.ones((8, 8, 1), np.uint8))
    for i in range(n):
        img = np.roll(tex, i, 1)[:size, :size]
        if grain:
            img = np.clip(img.astype(np.int16) + rng.integers(-grain, grain + 1, img.shape), 0, 255).astype(np.uint8)
        yield np.ascontiguousarray(img)


def test_not_a_video_and_no_video_stream_are_named(map_model, tmp_path):
    fake = tmp_path / "notes.mp4"
    fake.write_text("these are my notes, not a film\n" * 20)
    res = cli("translate", "--model", map_model, fake, "--out", tmp_path / "out", "--device", "cpu")
    assert res.returncode == 2 and f"{fake} is not a video FFmpeg can read" in res.stderr
    sound = tmp_path / "sound.mp4"
    with av.open(str(sound), "w") as out:
        a = out.add_stream("aac", rate=16000)
        for k in range(10):
            f = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            f.sample_rate, f.pts = 16000, k * 1024
            out.mux(a.encode(f))
        out.mux(a.encode())
    res = cli("translate", "--model", map_model, sound, "--out", tmp_path / "out", "--device", "cpu")
    assert res.returncode == 2 and f"{sound} has no video stream (streams: audio)" in res.stderr


def test_undecodable_frame_is_named_and_the_frames_before_it_are_kept(map_model, tmp_path):
    # PNG frames in MOV: corrupt the image data of frame 5 only.
    src = tmp_path / "broken.mov"
    with av.open(str(src), "w") as out:
        s = out.add_stream("png", rate=10)
        s.width = s.height = 64
        s.pix_fmt = "rgb24"
        for i, img in enumerate(texture_frames(10, 64)):
            f = av.VideoFrame.from_ndarray(img, format="rgb24")
            f.pts = i
            out.mux(s.encode(f))
        out.mux(s.encode())
    data = bytearray(src.read_bytes())
    starts = [i for i in range(len(data) - 8) if data[i:i + 8] == b"\x89PNG\r\n\x1a\n"]
    assert len(starts) == 10
    idat = data.index(b"IDAT", starts[5])
    data[idat + 4:idat + 304] = b"\xff" * 300
    src.write_bytes(bytes(data))
    res = cli("translate", "--model", map_model, src, "--out", tmp_path / "out", "--device", "cpu",
              "--backend", "eager", "--no-progress")
    assert res.returncode == 2, res.stderr
    assert "frame 5 cannot be decoded" in res.stderr
    assert f"the 5 frames before it are in {tmp_path / 'out' / 'broken.mov'}" in res.stderr
    frames, _, _ = read_clip(tmp_path / "out" / "broken.mov")
    assert len(frames) == 5


def test_ctrl_c_leaves_a_playable_partial_clip(map_model, tmp_path):
    src = write_clip(tmp_path / "long.mp4", list(texture_frames(600, 128)), crf=23)
    out = tmp_path / "out" / "long.mp4"
    proc = subprocess.Popen([sys.executable, "-m", "pix2pix", "translate", "--model", str(map_model), str(src),
                             "--out", str(tmp_path / "out"), "--device", "cpu", "--backend", "eager",
                             "--no-progress"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=ONE_THREAD)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and not out.exists():
        time.sleep(0.05)
    # The file appears with the first packet out of the encoder (its lookahead: ~40 frames in).
    assert proc.poll() is None, "the translation ended before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr[-2000:]
    frames, times, facts = read_clip(out)
    assert 0 < len(frames) < 600
    assert f"interrupted: {out} holds the first {len(frames)} frames of 600" in stdout
    assert facts["audio"] == [("aac", 16000)]  # the audio up to where the video stops
    with av.open(str(out)) as c:
        audio_end = max(float(p.pts * p.time_base) for p in c.demux(c.streams.audio[0]) if p.size)
    assert abs(audio_end - times[-1]) < 0.2


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_in_a_script_stops_between_frames_and_restores_the_handler(map_model, tmp_path, sig):
    """Ctrl-C or SIGTERM during the Python API's translate_video (main thread): the clip stops at the
    next frame with a playable file, and the handlers in place before are back after."""
    import threading

    from pix2pix.inference.translator import Translator
    from pix2pix.video import translate_video

    assert threading.current_thread() is threading.main_thread()  # where Python delivers signals
    src = write_clip(tmp_path / "c.mp4", list(texture_frames(120, 64)), crf=23, audio=False)
    tr = Translator.from_pretrained(map_model, device="cpu", backend="eager")
    before = signal.getsignal(sig)
    sent = []

    def on_frame(n: int) -> None:  # the encode thread: the signal goes to the process, as Ctrl-C does
        if not sent:
            sent.append(1)
            signal.raise_signal(sig)

    stats = translate_video(tr, src, tmp_path / "out.mp4", batch_size=1, on_frame=on_frame)
    assert stats.interrupted and 0 < stats.frames < 120
    frames, _, _ = read_clip(tmp_path / "out.mp4")
    assert len(frames) == stats.frames
    assert signal.getsignal(sig) is before


RSS_SCRIPT = """
import resource, sys, torch
from pix2pix.inference.translator import Translator
from pix2pix.video import translate_video
torch.set_num_threads(1)
stats = translate_video(Translator.from_pretrained(sys.argv[1], device="cpu", backend="eager"), sys.argv[2], sys.argv[3])
print(stats.frames, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


@pytest.mark.slow
def test_memory_does_not_grow_with_clip_length(tmp_path):
    from pix2pix.checkpoint import PretrainedInfo, save_pretrained
    from pix2pix.config import ModelConfig
    from pix2pix.models import build_generator

    cfg = ModelConfig(generator="unet_256", base_channels=1)  # the stream is on trial, not the network
    model = save_pretrained(build_generator(cfg).eval(), PretrainedInfo(model=cfg), tmp_path / "model")
    # Both clips are translated at once, each by its own process on one thread: a process's
    # peak RSS is its own, whatever runs beside it.
    procs = {}
    for n in (100, 2000):
        src = tmp_path / f"clip{n}.mp4"
        with av.open(str(src), "w") as out:
            s = out.add_stream("libx264", rate=25)
            s.width = s.height = 256
            s.pix_fmt, s.options = "yuv420p", {"preset": "ultrafast"}
            for i, img in enumerate(texture_frames(n, 256)):
                f = av.VideoFrame.from_ndarray(img, format="rgb24")
                f.pts = i
                out.mux(s.encode(f))
            out.mux(s.encode())
        procs[n] = subprocess.Popen([sys.executable, "-c", RSS_SCRIPT, str(model), str(src), str(tmp_path / f"out{n}.mp4")],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peaks = {}
    for n, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, stderr[-2000:]
        frames, peak_kb = map(int, stdout.split()[-2:])
        assert frames == n
        peaks[n] = peak_kb
    print(f"peak RSS: 100 frames {peaks[100] / 1024:.0f} MB, 2000 frames {peaks[2000] / 1024:.0f} MB")
    assert peaks[2000] <= 1.15 * peaks[100]
