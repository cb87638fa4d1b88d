"""`pix2pix models`: every generator architecture and student preset, with parameters and MACs."""
from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list generator architectures with parameters and MACs",
                       description="Parameters and multiply-accumulates per image of every "
                                   "generator (default width) and distillation student preset. MACs "
                                   "count convolutions; transposed convs by input size (the work "
                                   "done) and by output size (as torchprofile and GAN Compression "
                                   "count them).")
    p.add_argument("--size", type=int, default=256, help="square input side for the MAC counts")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--only", help="comma-separated names to list (default: all)")
    p.set_defaults(run=run)


def model_table(size: int = 256, only: list[str] | None = None) -> list[dict]:
    from ..config import ModelConfig
    from ..models import GENERATORS, STUDENTS, build_generator, generator_multiple
    from ..models.profile import profile

    entries = [(name, name, ModelConfig().base_channels, spec.description)
               for name, spec in GENERATORS.items()]
    entries += [(name, gen, width, f"student: {gen} at width {width}")
                for name, (gen, width) in STUDENTS.items()]
    if only:
        unknown = sorted(set(only) - {e[0] for e in entries})
        if unknown:
            raise ValueError(f"--only: unknown name(s) {', '.join(unknown)}; run `pix2pix models`")
        entries = [e for e in entries if e[0] in only]
    if size < 1:
        raise ValueError(f"--size {size} must be a positive image side, e.g. 256")
    rows = []
    for name, gen, width, description in entries:
        if size % generator_multiple(gen):
            fits = [e[0] for e in entries if size % generator_multiple(e[1]) == 0]
            raise ValueError(f"--size {size} is not a multiple of {generator_multiple(gen)} ({gen}); "
                             + (f"list the architectures that take it with --only {','.join(fits)}"
                                if fits else "use a multiple of 256"))
        p = profile(build_generator(ModelConfig(generator=gen, base_channels=width), init=False),
                    size=size)
        rows.append({"name": name, "generator": gen, "base_channels": width,
                     "parameters": p.parameters, "macs": p.macs,
                     "macs_torchprofile": p.macs_torchprofile, "description": description})
    return rows


def run(args: argparse.Namespace) -> int:
    import json

    rows = model_table(args.size, args.only.split(",") if args.only else None)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'name':22} {'width':>5} {'params':>12} {'GMAC':>8} {'GMAC(tp)':>9}  description")
    for r in rows:
        print(f"{r['name']:22} {r['base_channels']:>5} {r['parameters']:>12,} {r['macs'] / 1e9:>8.3f} "
              f"{r['macs_torchprofile'] / 1e9:>9.3f}  {r['description']}")
    print(f"GMAC: per {args.size}x{args.size} image, transposed convs by input size; GMAC(tp): by "
          f"output size (torchprofile's count). Any generator takes --base-channels N.")
    return 0
