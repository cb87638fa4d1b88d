"""The video half of `pix2pix translate`: clips (by extension) and --sequence frame folders."""
from __future__ import annotations

import argparse
import re
from pathlib import Path

from ..video.flow import FLICKER_EVERY, FLICKER_SIZE


def add_video_arguments(p: argparse.ArgumentParser) -> None:
    from ..video.temporal import TEMPORAL_METHODS, describe_methods

    g = p.add_argument_group("video", "clips (mp4, mov, mkv, webm, avi, gif) are translated frame by frame "
                                      "into OUT/NAME with the same frames, timing, size, rotation and audio")
    g.add_argument("--sequence", action="store_true",
                   help="each input folder is a clip of numbered frames (in number order: 2 before 10); "
                        "frames are written to OUT/FOLDER/")
    g.add_argument("--codec", default=None,
                   help="video encoder (default: the container's best in this PyAV build: libx264 for "
                        "mp4/m4v/mov/mkv/avi, libvpx-vp9 for webm, gif for gif)")
    g.add_argument("--crf", type=int, default=None, help="constant quality (lower is better; libx264 "
                                                         "default 18, vp9 31)")
    g.add_argument("--bitrate", default=None, help="target bitrate instead of --crf, e.g. 4M or 800k")
    g.add_argument("--temporal", default="none", choices=list(TEMPORAL_METHODS),
                   help=f"stabilise with the input's optical flow: {describe_methods()} (default none)")
    g.add_argument("--temporal-strength", type=float, default=0.5,
                   help="share of the warped previous output kept, in [0, 1) (default 0.5)")
    g.add_argument("--no-audio", action="store_true", help="leave the audio out")
    g.add_argument("--no-flicker", action="store_true",
                   help="skip the flicker metric (saves its optical flows)")
    g.add_argument("--flicker-size", type=int, default=FLICKER_SIZE, metavar="PX",
                   help=f"the flicker metric's flow is computed on frames shrunk to this long side, "
                        f"its error at full resolution on one pixel per cell (default {FLICKER_SIZE}; "
                        f"0: flow at full resolution, every pixel)")
    g.add_argument("--flicker-every", type=int, default=FLICKER_EVERY, metavar="K",
                   help=f"the flicker metric measures one frame pair in K, chosen at random in each run "
                        f"of K (default {FLICKER_EVERY}; 1: every pair). With --temporal blend the "
                        f"metric uses the blend's full-resolution flow of every pair")


def split_inputs(args: argparse.Namespace) -> tuple[list[str], list[Path], list[Path]]:
    """(image inputs, clips, frame folders) of the command line."""
    from ..video.io import is_video_file

    images, clips, folders = [], [], []
    for raw in args.inputs:
        path = Path(raw)
        if args.sequence:
            if not path.is_dir():
                raise FileNotFoundError(f"--sequence takes folders of frames; {path} is not one")
            folders.append(path)
        elif is_video_file(path):
            if not path.is_file():
                raise FileNotFoundError(f"clip {path} does not exist")
            clips.append(path)
        else:
            images.append(raw)
    return images, clips, folders


def parse_bitrate(text: str | None) -> int | None:
    if text is None:
        return None
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmM]?)\s*", text)
    if not m:
        raise ValueError(f"--bitrate {text!r} is not a number like 4M, 800k or 2500000")
    return int(float(m.group(1)) * {"": 1, "k": 1e3, "m": 1e6}[m.group(2).lower()])


def flicker_gap(frames: int) -> str:
    """Why a clip has no flicker figure (rather than printing nan)."""
    if frames < 2:
        return f"a clip of {frames} frame(s) has no frame pair"
    return ("no frame pair with reliable motion was measured; --flicker-every 1 measures every pair, "
            "and a clip without texture or with cuts at every frame has none")


def run_clips(args: argparse.Namespace, translator, clips: list[Path], folders: list[Path]) -> int:
    """Translate every clip and frame folder; 130 when interrupted (the partial output is kept)."""
    from tqdm.auto import tqdm

    from ..video.stream import translate_sequence, translate_video
    from ..video.temporal import make_temporal

    if clips:
        try:
            import av  # noqa: F401
        except ImportError:
            raise ValueError("translating clips needs PyAV: pip install 'pix2pix[video]' "
                             "(frame folders with --sequence do not)") from None
    bitrate = parse_bitrate(args.bitrate)
    out_dir = Path(args.out)
    for src in [*clips, *folders]:
        is_seq = src in folders
        # The resolved name: "." or "frames/.." have none of their own, and OUT/"" would be OUT
        # itself, the frames then written loose among whatever is there.
        name = src.resolve().name
        dst = out_dir / name
        bar = tqdm(desc=name, unit="frame", disable=args.no_progress)
        common = dict(batch_size=args.batch_size, tile=args.tile, overlap=args.overlap,
                      temporal=make_temporal(args.temporal, args.temporal_strength),
                      measure=not args.no_flicker, flicker_size=args.flicker_size,
                      flicker_every=args.flicker_every, on_frame=bar.update,
                      on_start=lambda s: setattr(bar, "total", s.total) or bar.refresh())
        with bar:
            if is_seq:
                stats = translate_sequence(translator, src, dst, **common)
            else:
                stats = translate_video(translator, src, dst, codec=args.codec, crf=args.crf,
                                        bitrate=bitrate, audio=not args.no_audio, **common)
        what = f"{stats.frames} frames" + (f" of {stats.total}" if stats.total else "")
        if stats.interrupted:
            print(f"interrupted: {dst} holds the first {what} (playable); rerun to translate it all")
            return 130
        print(f"translated {src} into {dst}: {what} in {stats.seconds:.1f} s ({stats.fps:.1f} fps; "
              f"{stats.encoder}, backend {translator.backend.name}, {stats.inference_seconds:.1f} s in inference)")
        if not args.no_flicker and not stats.output_error.count:
            print(f"flicker: not measured ({flicker_gap(stats.frames)})")
        elif not args.no_flicker:
            print(f"flicker (warping error, mean |O_t - warp(O_t-1)| in [0, 1]): output "
                  f"{stats.output_error.mean:.4f}, input clip {stats.input_error.mean:.4f}"
                  + (f" [temporal {args.temporal} {args.temporal_strength}]" if args.temporal != "none" else "")
                  + f" ({stats.flicker_method})")
    return 0
