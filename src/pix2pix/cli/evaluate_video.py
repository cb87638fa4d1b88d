"""`pix2pix evaluate-video`: flicker (temporal warping error) of a clip, and per-frame L1/PSNR
against a target clip."""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate-video", help="flicker and per-frame quality of a translated clip",
                       description="Temporal warping error of CLIP: mean |O_t - warp(O_t-1, flow)| over "
                                   "pixels whose flow is forward-backward consistent, with the flow of "
                                   "--input (the clip it was translated from); per-frame L1 and PSNR "
                                   "against --target. Clips or folders of numbered frames.")
    p.add_argument("clip", help="the clip to score (file or frame folder)")
    p.add_argument("--input", default=None, help="the clip CLIP was made from: its flow is used, and "
                                                 "its own warping error printed beside (the floor)")
    p.add_argument("--target", default=None, help="ground-truth clip: per-frame L1 and PSNR")
    p.add_argument("--json", dest="json_out", metavar="FILE",
                   help="write the summary and the per-frame figures as JSON")
    p.set_defaults(run=run)


def _error(value: float, frames: int) -> str:
    # A clip of one frame (or without reliable motion) has no warping error: say why, not "nan".
    from .translate_video import flicker_gap

    return f"not measured ({flicker_gap(frames)})" if math.isnan(value) else f"{value:.4f}"


def _json_safe(value):
    """NaN as null: json.dumps would write NaN, which is not JSON (JSON.parse and jq refuse it)."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def run(args: argparse.Namespace) -> int:
    from ..video.evaluate import evaluate_clip

    score = evaluate_clip(args.clip, flow_from=args.input, target=args.target)
    s = score.summary()
    line = f"{args.clip}: {s['frames']} frames, warping error {_error(s['warping_error'], s['frames'])}"
    if args.input and not math.isnan(s["warping_error"]):
        line += f" (input clip {_error(s['flow_source_warping_error'], s['frames'])})"
    print(line)
    if args.target:
        print(f"vs {args.target}: L1 {s['l1']:.4f}, PSNR {s['psnr']:.2f} dB "
              f"(worst frame {s['worst_l1_frame']}: L1 {s['worst_l1']:.4f})")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(_json_safe({
            "summary": s, "per_frame": {"warping_error": score.warping_error.per_frame,
                                        "l1": score.l1, "psnr": score.psnr}}), indent=1, allow_nan=False))
    return 0
