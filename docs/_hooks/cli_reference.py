"""MkDocs hook: write the command-line reference (docs/cli.md) from pix2pix.cli's argparse parsers.

The page holds a marker; at build time it is replaced by one section per subcommand (nested ones,
such as `pix2pix data combine`, included) with that parser's own --help text, so the reference
cannot drift from the code. The parsers are built from this checkout's src/, not an installed copy.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

MARKER = "<!-- cli-reference -->"
SRC = Path(__file__).resolve().parents[2] / "src"


def _subcommands(parser: argparse.ArgumentParser) -> list[tuple[str, str, argparse.ArgumentParser]]:
    """(name, one-line help, parser) of each direct subcommand, in the order they were added."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            found += [(name, helps.get(name, ""), sub) for name, sub in action.choices.items()]
    return found


def _sections(parser: argparse.ArgumentParser, prefix: str, level: int) -> list[str]:
    out = []
    for name, help_text, sub in _subcommands(parser):
        command = f"{prefix} {name}"
        out += [f"{'#' * level} `{command}`", ""]
        if help_text:
            out += [help_text[0].upper() + help_text[1:].rstrip(".") + ".", ""]
        out += ["```text", sub.format_help().rstrip(), "```", ""]
        out += _sections(sub, command, level + 1)
    return out


def render() -> str:
    """The reference as Markdown: an index of the subcommands, then each one's --help."""
    if str(SRC) not in sys.path:
        sys.path.insert(0, str(SRC))
    os.environ["COLUMNS"] = "88"  # argparse wraps to the terminal; the page must not depend on it
    from pix2pix.cli import build_parser

    parser = build_parser()
    index = [f"| [`pix2pix {n}`](#pix2pix-{n}) | {h} |" for n, h, _ in _subcommands(parser)]
    return "\n".join(["| command | what it does |", "|---|---|", *index, "",
                      "```text", parser.format_help().rstrip(), "```", "",
                      *_sections(parser, "pix2pix", 2)])


def on_page_markdown(markdown: str, page, config, files) -> str:
    if MARKER not in markdown:
        return markdown
    return markdown.replace(MARKER, render())
