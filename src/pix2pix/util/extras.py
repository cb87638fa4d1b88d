"""Which optional extra (``pip install "pix2pix[NAME]"``) provides which importable module.

One table, used by the CLI to turn a ``ModuleNotFoundError`` from any command into a line that
says what to install, and by the install section of docs/getting-started.md.
"""
from __future__ import annotations

from typing import Optional

# Top-level import name -> (extra, the PyPI package that provides it).
MODULE_EXTRAS: dict[str, tuple[str, str]] = {
    "mpl_toolkits": ("examples", "basemap-data"),
    "skimage": ("examples", "scikit-image"),
    "sklearn": ("examples", "scikit-learn"),
    "fastapi": ("serve", "fastapi"),
    "uvicorn": ("serve", "uvicorn"),
    "multipart": ("serve", "python-multipart"),
    "python_multipart": ("serve", "python-multipart"),
    "fastapi_offline": ("serve", "fastapi-offline"),
    "websockets": ("serve", "websockets"),
    "starlette": ("serve", "fastapi"),
    "pydantic": ("serve", "fastapi"),
    "onnx": ("export", "onnx"),
    "onnxscript": ("export", "onnxscript"),
    "onnxruntime": ("export", "onnxruntime"),
    "h5py": ("hed", "h5py"),
    "tensorboard": ("tensorboard", "tensorboard"),
    "wandb": ("wandb", "wandb"),
    "kornia": ("augment", "kornia"),
    "av": ("video", "av"),
    "scipy": ("test", "scipy"),
}


class MissingExtra(ImportError):
    """An optional dependency is not installed; the message names the extra that brings it."""


def missing_extra_message(module: Optional[str], feature: str) -> Optional[str]:
    """The "install this" sentence for a missing ``module`` (a dotted name is fine), or None when
    the module belongs to no extra (then the error is a real bug, not a missing install)."""
    top = (module or "").split(".")[0]
    if top not in MODULE_EXTRAS:
        return None
    extra, package = MODULE_EXTRAS[top]
    return (f"{feature} needs the optional package '{package}', which is not installed: "
            f"pip install \"pix2pix[{extra}]\" (or \"pix2pix[all]\" for every optional feature)")
