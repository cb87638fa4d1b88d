"""`pix2pix serve`: the interactive studio and REST API for one or more trained models."""
from __future__ import annotations

import argparse
import ipaddress
import os
import secrets
import socket
import sys


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="interactive studio and REST API in the browser",
                       description="Serve trained models: a drawing studio at / that translates "
                                   "live, POST /api/translate, POST /api/translate-video, the "
                                   "/api/live WebSocket, GET /api/models, GET /health, and the API "
                                   "docs at /docs. Works offline. Beyond loopback every request needs "
                                   "an access token (--token, or one generated and printed).")
    p.add_argument("--model", action="append", metavar="[NAME=]DIR",
                   help="pretrained, checkpoint or run directory; repeat for several models "
                        "(the first is the default; NAME defaults to the directory's name). "
                        "Without --model: every built-in model (listed at start-up)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; any other "
                        "asks for an access token unless --no-auth)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    p.add_argument("--backend", default="auto",
                   help="eager, compile, onnxruntime, or auto (the fastest for the device; logged)")
    p.add_argument("--max-upload-mb", type=float, default=20.0, help="largest accepted body")
    p.add_argument("--max-pixels", type=int, default=None,
                   help="largest image, counted after padding to the network's multiple (default "
                        "6144x4096: a 24 Mpx photo); large ones are tiled as `pix2pix translate` does")
    p.add_argument("--tile", type=int, default=None, metavar="PX",
                   help="tile size for large uploads, as `translate --tile` (default: the automatic "
                        "rule; 0: never tile)")
    p.add_argument("--max-video-mb", type=float, default=200.0, help="largest accepted clip")
    p.add_argument("--max-video-seconds", type=float, default=120.0, help="longest accepted clip")
    p.add_argument("--max-video-frames", type=int, default=3600, help="most frames in an accepted clip")
    p.add_argument("--max-batch", type=int, default=4,
                   help="most waiting requests of the same model and size run as one batch")
    p.add_argument("--max-queue", type=int, default=64,
                   help="waiting requests beyond this are refused with 503 and Retry-After")
    p.add_argument("--token", default=os.environ.get("PIX2PIX_TOKEN") or None,
                   help="access token every request must carry (header 'Authorization: Bearer TOKEN', "
                        "?token= or the cookie the page gets); default from $PIX2PIX_TOKEN, else one is "
                        "generated and printed when --host is not loopback")
    p.add_argument("--no-auth", action="store_true",
                   help="serve beyond loopback without an access token (anyone who can reach it may use it)")
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
    limits = Limits(max_bytes=int(args.max_upload_mb * 1024 * 1024),
                    **({"max_pixels": args.max_pixels} if args.max_pixels is not None else {}))
    if args.tile is not None and args.tile < 0:
        raise ValueError(f"--tile must be 0 (never tile) or a tile size in px, got {args.tile}")
    token, generated = _access_token(args)
    specs = args.model
    if not specs:
        from ..builtin import BUILTINS, builtin_model_dir

        # Every built-in model, in the table's order: its first is the default the studio opens on.
        specs = [f"{n}={builtin_model_dir(n)}" for n in BUILTINS]
        print("no --model given: serving the built-in models (pass --model DIR for your own):")
        for b in BUILTINS.values():
            print(f"  {b.name}: {b.summary}")
    models = load_models(specs, device=args.device, backend=args.backend)
    video_limits = VideoLimits(max_bytes=int(args.max_video_mb * 1024 * 1024),
                               max_seconds=args.max_video_seconds, max_frames=args.max_video_frames)
    app = create_app(models, limits=limits, max_batch=args.max_batch, max_pending=args.max_queue,
                     video_limits=video_limits, tile=args.tile, token=token)
    for m in models:
        d = m.describe()
        palette = f", palette of {len(d.palette)}" if d.palette else ""
        print(f"  {m.name}: {d.generator} ({d.parameters:,} params), {d.in_channels}->"
              f"{d.out_channels} channels, {d.image_size} px{palette}  [{m.source}]")
    host = args.host
    if host in ("0.0.0.0", "::", ""):  # every interface: show a name other machines can use
        host = socket.gethostname()
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{args.port}/"
    if generated:  # printed once: the link carries the token, and the page keeps it in a cookie
        url += f"?token={token}"
    print(f"pix2pix studio on {url}  (API docs: /docs; Ctrl-C stops)", flush=True)
    if token is not None and not generated:
        print("access token required (the one given with --token or $PIX2PIX_TOKEN): open the page "
              "with ?token=TOKEN, or send 'Authorization: Bearer TOKEN'", flush=True)
    if args.no_auth and not _is_loopback(args.host):
        print(f"warning: listening on {args.host} with --no-auth: anyone who can reach this server "
              f"may use it", file=sys.stderr)
    # A WebSocket message holds one edit: as large as an upload may be, plus its header line.
    uvicorn.run(app, host=args.host, port=args.port, log_level="info", access_log=args.access_log,
                ws_max_size=limits.max_bytes + 4096)
    return 0


def _access_token(args: argparse.Namespace) -> tuple[str | None, bool]:
    """(the token to ask for or None, whether it was generated here). Loopback asks for none
    unless given one; beyond loopback one is asked for unless --no-auth."""
    from ..serve.auth import check_token

    if args.no_auth and args.token:
        raise ValueError("--token and --no-auth contradict each other; give one")
    if args.token:
        return check_token(args.token), False
    if args.no_auth or _is_loopback(args.host):
        return None, False
    return secrets.token_urlsafe(24), True
