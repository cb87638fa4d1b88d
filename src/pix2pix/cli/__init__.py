"""`pix2pix` command line: one module per subcommand, heavy imports inside each command."""
from __future__ import annotations

import argparse
import logging
import sys
from types import ModuleType
from typing import Callable, Optional

from ..util.extras import MissingExtra, missing_extra_message


# Each subcommand's module, imported only when the parser is built (spelled out, so that grep and
# type checkers can follow them; the heavy imports stay inside each command's run()).
def _train() -> ModuleType:
    from . import train
    return train


def _distill() -> ModuleType:
    from . import distill
    return distill


def _models() -> ModuleType:
    from . import models
    return models


def _translate() -> ModuleType:
    from . import translate
    return translate


def _data() -> ModuleType:
    from . import data
    return data


def _demo() -> ModuleType:
    from . import demo
    return demo


def _evaluate() -> ModuleType:
    from . import evaluate
    return evaluate


def _evaluate_video() -> ModuleType:
    from . import evaluate_video
    return evaluate_video


def _export() -> ModuleType:
    from . import export
    return export


def _import_weights() -> ModuleType:
    from . import import_weights
    return import_weights


def _serve() -> ModuleType:
    from . import serve
    return serve


COMMANDS: dict[str, Callable[[], ModuleType]] = {
    "train": _train, "distill": _distill, "translate": _translate, "data": _data, "demo": _demo,
    "evaluate": _evaluate, "evaluate-video": _evaluate_video, "export": _export,
    "import-weights": _import_weights, "serve": _serve, "models": _models,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pix2pix", description="Paired image-to-image translation with conditional GANs.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for load in COMMANDS.values():
        load().add_parser(sub)
    return parser


class BarAwareHandler(logging.StreamHandler):
    """Log lines on stderr that do not land in the middle of a progress bar: while a tqdm bar is
    open, tqdm.write clears it, prints the line and redraws the bar below."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            from tqdm import tqdm

            if getattr(tqdm, "_instances", None):
                tqdm.write(self.format(record), file=self.stream)
                self.flush()
                return
        except Exception:  # noqa: BLE001 - logging must never fail the command
            pass
        super().emit(record)


def main(argv: Optional[list[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = BarAwareHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, handlers=[handler])
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
