"""`pix2pix serve`: the interactive studio and REST API for one or more trained models."""
from __future__ import annotations

import argparse
import ipaddress
import sys


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="interactive studio and REST API in the browser",
                       description="Serve trained models: a drawing studio at / that translates "
                                   "live, POST /api/translate, GET /api/models, GET /health, and "
                                   "the API docs at /docs. Works offline.")
    p.add_argument("--model", action="append", metavar="[NAME=]DIR",
                   help="pretrained, checkpoint or run directory; repeat for several models "
                        "(the first is the default; NAME defaults to the directory's name). "
                        "Without --model: the built-in relief map -> satellite model")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    p.add_argument("--backend", default="auto",
                   help="eager, compile, onnxruntime, or auto (the fastest for the device; logged)")
    p.add_argument("--max-upload-mb", type=float, default=20.0, help="largest accepted body")
    p.add_argument("--max-pixels", type=int, default=2048 * 2048,
                   help="largest image, counted after padding to the network's multiple")
    p.add_argument("--max-video-mb", type=float, default=200.0, help="largest accepted clip")
    p.add_argument("--max-video-seconds", type=float, default=120.0, help="longest accepted clip")
    p.add_argument("--max-video-frames", type=int, default=3600, help="most frames in an accepted clip")
    p.add_argument("--max-batch", type=int, default=4,
                   help="most waiting requests of the same model and size run as one batch")
    p.add_argument("--max-queue", type=int, default=64,
                   help="waiting requests beyond this are refused with 503 and Retry-After")
    p.add_argument("--access-log", action="store_true", help="log every request")
    p.set_defaults(run=run)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def run(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from ..serve import Limits, create_app, load_models
        from ..serve.video import VideoLimits
    except ImportError as e:
        print(f"pix2pix serve: error: {e.name or e} is not installed; "
              f"install the server with: pip install 'pix2pix[serve]'", file=sys.stderr)
        return 2
    if not 0 <= args.port <= 65535:
        raise ValueError(f"--port must be in 0..65535, got {args.port}")
    limits = Limits(max_bytes=int(args.max_upload_mb * 1024 * 1024), max_pixels=args.max_pixels)
    specs = args.model
    if not specs:
        from ..builtin import BUILTIN_NAME, builtin_model_dir

        specs = [f"{BUILTIN_NAME}={builtin_model_dir()}"]
        print(f"no --model given: serving the built-in model {BUILTIN_NAME} (paint a relief map "
              f"in its palette, get satellite imagery; pass --model DIR for your own)")
    models = load_models(specs, device=args.device, backend=args.backend)
    video_limits = VideoLimits(max_bytes=int(args.max_video_mb * 1024 * 1024),
                               max_seconds=args.max_video_seconds, max_frames=args.max_video_frames)
    app = create_app(models, limits=limits, max_batch=args.max_batch, max_pending=args.max_queue,
                     video_limits=video_limits)
    for m in models:
        d = m.describe()
        palette = f", palette of {len(d.palette)}" if d.palette else ""
        print(f"  {m.name}: {d.generator} ({d.parameters:,} params), {d.in_channels}->"
              f"{d.out_channels} channels, {d.image_size} px{palette}  [{m.source}]")
    shown = f"[{args.host}]" if ":" in args.host else args.host
    print(f"pix2pix studio on http://{shown}:{args.port}/  (API docs: /docs; Ctrl-C stops)",
          flush=True)
    if not _is_loopback(args.host):
        print(f"warning: listening on {args.host}: other machines can reach this server, "
              f"and it has no authentication", file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, log_level="info", access_log=args.access_log)
    return 0
