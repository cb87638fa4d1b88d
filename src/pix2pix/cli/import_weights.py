"""`pix2pix import-weights`: a generator saved by the reference PyTorch code -> a pretrained dir."""
from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..models import GENERATORS
    from ..models.layers import NORMS

    p = sub.add_parser(
        "import-weights", help="convert a reference PyTorch generator (latest_net_G.pth) to our format",
        description="Convert a generator state dict saved by the reference PyTorch pix2pix/CycleGAN "
                    "code (e.g. its published facades label->photo model) into a pretrained "
                    "directory for translate, serve and export. The file is read with "
                    "weights_only=True, so no code in it runs. Channels and width are read from the "
                    "tensors. The reference puts U-Net dropout one decoder level further out than "
                    "the paper; imported models record that (model.dropout_start=1), so --paper "
                    "mode matches the reference code.")
    p.add_argument("file", help="the .pth state dict (e.g. latest_net_G.pth)")
    p.add_argument("--arch", required=True,
                   help=f"generator it was trained as: {', '.join(GENERATORS)}")
    p.add_argument("--out", required=True, help="output pretrained directory")
    p.add_argument("--norm", choices=NORMS, default=None,
                   help="normalisation (default: batch if the file has batch statistics, else instance)")
    p.add_argument("--direction", choices=("AtoB", "BtoA"), default="AtoB",
                   help="direction it was trained in, kept as metadata (facades label->photo is BtoA)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..checkpoint import read_info
    from ..interop import import_reference_weights

    out = import_reference_weights(args.file, args.arch, args.out, norm=args.norm, direction=args.direction)
    m = read_info(out).model
    print(f"imported {args.file} as {m.generator}: {m.in_channels}->{m.out_channels} channels, "
          f"base {m.base_channels}, {m.norm} norm; wrote {out}")
    print(f"translate with `pix2pix translate --model {out} IMAGES --out DIR`")
    return 0
