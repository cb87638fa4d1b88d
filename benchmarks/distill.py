"""Does distillation earn its keep? Teacher vs distilled students vs the same students from scratch.

    python benchmarks/distill.py --teacher runs/teacher --data data/maps --out bench/distill \\
        --students unet_128_w16 mobile_unet_128_w32 --minutes 15

For each student, `pix2pix distill` and `pix2pix train` (same architecture, same data, same
options, same wall-clock budget via --max-time) run at the same time, so both see the same machine
load. Then one table for everything on the test split: parameters, MACs (both conventions),
latency at 256x256 batch 1 (PyTorch eager and ONNX Runtime), L1/PSNR/LPIPS against the target and
against the teacher; and the MACs-vs-LPIPS trade-off, with the matmul floor of this machine.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

from pix2pix.metrics.compare import compare_models, format_table, rows_to_dicts
from pix2pix.models import STUDENTS

GOAL_MAC_RATIO, GOAL_LPIPS, GOAL_MS = 10.0, 1.05, 15.0
UNET_256_MACS = 6_048_186_368


def matmul_gflops(seconds: float = 1.0) -> float:
    """Measured fp32 matmul rate of this process (the compute floor's denominator)."""
    a, b = torch.randn(512, 512), torch.randn(512, 512)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        n += 1
    return 2 * 512**3 * n / (time.perf_counter() - t0) / 1e9


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--teacher", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--students", nargs="+", default=["unet_128_w16", "mobile_unet_128_w32"])
    ap.add_argument("--minutes", type=float, default=15)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1, help="OMP threads per training process")
    ap.add_argument("--extra", nargs="*", default=[], help="more options for both commands")
    ap.add_argument("--skip-training", action="store_true", help="only (re)build the table")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    budget = f"{args.minutes * 60:.0f}"
    teacher_info = json.loads((Path(args.teacher) / "config.json").read_text())
    # A run directory's config.json is a TrainConfig; a pretrained directory's has image_size on top.
    size = str(teacher_info.get("image_size") or teacher_info["data"]["image_size"])
    d_base = (teacher_info.get("model") or {}).get("d_base_channels", 64)
    common = ["--data", args.data, "--image-size", size, "--batch-size", str(args.batch_size),
              "--max-time", budget, "--epochs", "1000", "--decay-epochs", "0", "--log-every", "25",
              "--checkpoint-every", "500", "--sample-every", "100000", "--tensorboard", "off",
              "--no-progress", *args.extra]
    procs = []
    if not args.skip_training:
        for name in args.students:
            arch, width = STUDENTS[name]
            d_opts = ["--set", f"model.d_base_channels={d_base}"]
            cmds = {
                f"{name}-distill": ["distill", "--teacher", args.teacher, "--student", name,
                                    "--table-split", "none"],
                f"{name}-scratch": ["train", "--arch", arch, "--base-channels", str(width), *d_opts],
            }
            for run, cmd in cmds.items():
                log = open(out / f"{run}.log", "w")
                procs.append(subprocess.Popen([sys.executable, "-m", "pix2pix", *cmd, "--out",
                                               str(out / run), *common], stdout=log, stderr=log, env=env))
        print(f"{len(procs)} runs of {args.minutes} min each started together (logs in {out})", flush=True)
        for p in procs:
            p.wait()
    models = {"teacher": args.teacher}
    for name in args.students:
        for kind in ("distill", "scratch"):
            models[f"{name}-{kind}"] = str(out / f"{name}-{kind}")
    steps = {}
    for name, path in models.items():
        status = Path(path) / "status.json"
        if status.is_file():
            steps[name] = json.loads(status.read_text()).get("step")
    rows = compare_models(models, args.data, split="test", teacher="teacher")
    floor = matmul_gflops()
    table = format_table(rows)
    teacher_row = rows[0]
    lines = [f"test split of {args.data}; training budget {args.minutes} min per student run "
             f"(all {len(procs) or 'previous'} runs at once, {args.threads} thread(s) each); "
             f"steps: {json.dumps(steps)}", "", table, "",
             f"matmul rate in this run: {floor:.1f} GFLOP/s fp32 (compute floor of a model = 2*MACs / rate)",
             "", "| model | MACs vs unet_256 | LPIPS / teacher's | ORT ms | floor ms | goal met |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        ratio = UNET_256_MACS / r.macs
        rel = r.vs_target.get("lpips", float("nan")) / teacher_row.vs_target.get("lpips", float("nan"))
        ort = r.latency_ms.get("onnxruntime", float("nan"))
        scratch = next((s for s in rows if s.name == r.name.replace("-distill", "-scratch")), None)
        beats = scratch is not None and r.name.endswith("-distill") and \
            r.vs_target.get("lpips", 1) < scratch.vs_target.get("lpips", 0)
        met = ratio >= GOAL_MAC_RATIO and rel <= GOAL_LPIPS and ort <= GOAL_MS and beats
        lines.append(f"| {r.name} | {ratio:.1f}x | {rel:.3f} | {ort:.1f} | "
                     f"{2 * r.macs / floor / 1e6:.1f} | {'yes' if met else 'no'} |")
    text = "\n".join(lines)
    print(text)
    (out / "distill_table.md").write_text(text + "\n")
    (out / "distill_table.json").write_text(json.dumps({"rows": rows_to_dicts(rows), "steps": steps,
                                                        "matmul_gflops": floor}, indent=2) + "\n")


if __name__ == "__main__":
    main()
