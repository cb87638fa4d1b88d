"""The one cache folder (converted weights, ONNX exports, the browser runtime)."""
from __future__ import annotations

import os
from pathlib import Path


def user_cache_root() -> Path:
    """``$XDG_CACHE_HOME``, else ``~/.cache``: where other tools (torch, pip) keep their caches."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")


def cache_dir() -> Path:
    """``$PIX2PIX_CACHE``, else ``$XDG_CACHE_HOME/pix2pix``, else ``~/.cache/pix2pix``."""
    if os.environ.get("PIX2PIX_CACHE"):
        return Path(os.environ["PIX2PIX_CACHE"])
    return user_cache_root() / "pix2pix"


__all__ = ["cache_dir", "user_cache_root"]
