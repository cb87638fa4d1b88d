"""`pix2pix` command line: one module per subcommand, heavy imports inside each command."""
from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Optional

from ..extras import MissingExtra, missing_extra_message

COMMANDS = ("train", "translate", "data", "demo", "evaluate", "export", "import-weights",
            "serve")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pix2pix", description="Paired image-to-image translation with conditional GANs.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        module = importlib.import_module(f"pix2pix.cli.{name.replace('-', '_')}")
        module.add_parser(sub)
    return parser


def main(argv: Optional[list[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.run(args) or 0)
    except (ValueError, FileNotFoundError, MissingExtra) as e:
        # User errors (bad data, bad options, missing files): one clear line, no traceback.
        print(f"pix2pix {args.command}: error: {e}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as e:
        # An optional dependency the command needs: say which extra brings it.
        message = missing_extra_message(e.name, f"pix2pix {args.command}")
        if message is None:
            raise
        print(f"pix2pix {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
