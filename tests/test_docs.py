"""The documentation site: it builds with --strict (no broken link, anchor or API reference), the
CLI reference has a section for every subcommand, the API reference an entry for every public name,
every dotted `pix2pix.…` name the pages mention exists, and the README stays a front page."""
from __future__ import annotations

import argparse
import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import missing_install

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"
PAGES = sorted((REPO / "docs").glob("*.md"))


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    for module in ("mkdocs", "material", "mkdocstrings_handlers.python"):
        try:
            __import__(module)
        except ImportError as e:
            missing_install("the docs tools (requirements-dev.txt)", str(e))
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
           "NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "-d", str(out)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout}\n{proc.stderr}"
    return out


def _subcommand_paths(parser: argparse.ArgumentParser, prefix: str = "pix2pix") -> list[str]:
    paths = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                paths.append(f"{prefix} {name}")
                paths += _subcommand_paths(sub, f"{prefix} {name}")
    return paths


def test_every_cli_subcommand_has_a_section(site: Path) -> None:
    from pix2pix.cli import COMMANDS, build_parser

    page = (site / "cli" / "index.html").read_text(encoding="utf-8")
    paths = _subcommand_paths(build_parser())
    assert {p.split()[1] for p in paths} >= set(COMMANDS)
    missing = [p for p in paths if f'id="{p.replace(" ", "-")}"' not in page]
    assert not missing, f"the CLI reference has no section for {missing}"


def test_every_public_name_has_an_api_entry(site: Path) -> None:
    import pix2pix

    page = (site / "api" / "index.html").read_text(encoding="utf-8")
    missing = [n for n in pix2pix.__all__ if f'id="pix2pix.{n}"' not in page]
    assert not missing, f"the API reference has no entry for pix2pix.{missing}"


def _module_file(parts: list[str]) -> Path | None:
    base = SRC.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _defines(module: Path, name: str) -> bool:
    """Whether ``name`` is defined, assigned or imported at the top level of ``module`` (or is a
    submodule of its package)."""
    if module.name == "__init__.py" and _module_file([*module.parent.relative_to(SRC).parts, name]):
        return True
    for node in ast.parse(module.read_text(encoding="utf-8")).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == name:
            return True
        targets = node.targets if isinstance(node, ast.Assign) else \
            [node.target] if isinstance(node, ast.AnnAssign) else []
        if any(isinstance(t, ast.Name) and t.id == name for t in targets):
            return True
        if isinstance(node, (ast.Import, ast.ImportFrom)) and \
                any((a.asname or a.name.split(".")[0]) == name for a in node.names):
            return True
    return False


def _broken_dotted_names(text: str) -> list[str]:
    broken = []
    for dotted in sorted(set(re.findall(r"\bpix2pix(?:\.[A-Za-z_][A-Za-z0-9_]*)+", text))):
        parts = dotted.split(".")
        # The longest prefix that is a module, then at most one attribute (a class's method is not checked).
        for cut in range(len(parts), 0, -1):
            module = _module_file(parts[:cut])
            if module is not None:
                break
        rest = parts[cut:]
        if module is None or (rest and not _defines(module, rest[0])):
            broken.append(dotted)
    return broken


def test_names_in_the_pages_exist() -> None:
    """`pix2pix.util.imageio.MAX_PIXELS` and friends: a page, the README or a docstring (the API
    reference renders them) that names a moved or removed module or attribute fails here; mkdocs
    checks links, not names in prose and code."""
    assert _broken_dotted_names("pix2pix.imageio.MAX_PIXELS pix2pix.util.imageio.MAX_PIXELS") == \
        ["pix2pix.imageio.MAX_PIXELS"]  # the checker itself catches a stale path
    files = [*PAGES, REPO / "README.md", *sorted(SRC.rglob("*.py"))]
    broken = {str(p.relative_to(REPO)): b for p in files
              if (b := _broken_dotted_names(p.read_text(encoding="utf-8")))}
    assert not broken, f"names that do not exist in src/: {broken}"


def test_readme_is_a_front_page() -> None:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 300, "README.md is the front page: move detail into docs/"
    assert "make demo" in text and "make test" in text
    targets = re.findall(r"\]\(((?!https?:|#)[^)#\s]+)", text)
    assert any(t.startswith("docs/") for t in targets), "the README links into docs/"
    missing = [t for t in targets if not (REPO / t).exists()]
    assert not missing, f"README.md links to files that do not exist: {missing}"
