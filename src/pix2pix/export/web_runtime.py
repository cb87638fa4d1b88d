"""ONNX Runtime Web for the in-browser studio: one pinned npm release, fetched once, then offline.

A pip user has no npm, and the package does not carry 40 MB of JavaScript and WebAssembly in git.
Instead :func:`runtime_dir` downloads the pinned ``onnxruntime-web`` tarball from the npm registry
once (HTTPS), checks it against the sha512 integrity the registry published for that version
(pinned here, so a changed or tampered tarball is refused), and unpacks only the files the page
needs into ``<cache>/onnxruntime-web/<version>/``. Every later export and every served studio uses
that folder with no network. ``PIX2PIX_ORT_WEB_TARBALL`` points at a local copy of the tarball
for machines that never reach the registry (it is verified the same way).
"""
from __future__ import annotations

import base64
import hashlib
import io
import logging
import os
import shutil
import tarfile
import tempfile
import urllib.request
from pathlib import Path

from ..util.cache import cache_dir

log = logging.getLogger(__name__)

VERSION = "1.30.0"
TARBALL_URL = f"https://registry.npmjs.org/onnxruntime-web/-/onnxruntime-web-{VERSION}.tgz"
# `npm view onnxruntime-web@1.30.0 dist.integrity`
INTEGRITY = "sha512-q0y+JrrtukXSzsBWEMccVfqX25LRmosXHF+CaRJmg8pZClzcV7svNc4rKY3jL02Vb7QmRMDs1SigqR4CXAfKYQ=="
# The ES-module bundles carry their Emscripten glue inline, so each needs only its .wasm beside it.
# wasm: the CPU build (SIMD, threads when the page is cross-origin isolated, else one thread).
# webgpu: WebGPU plus the same CPU kernels, on the asyncify build.
FLAVOURS = {
    "wasm": ("ort.wasm.bundle.min.mjs", "ort-wasm-simd-threaded.wasm"),
    "webgpu": ("ort.webgpu.bundle.min.mjs", "ort-wasm-simd-threaded.asyncify.wasm"),
}
FILES = tuple(f for pair in FLAVOURS.values() for f in pair) + ("package.json",)
_DONE = ".verified"


def runtime_config(flavours: tuple[str, ...] = tuple(FLAVOURS)) -> dict:
    """What a studio page needs to know of its runtime: the version and, per flavour it may load,
    the bundle and the .wasm it needs. The server sends it with ``GET /api/models`` and `export
    --web` writes it into ``config.json``, so the page never keeps its own copy of FLAVOURS."""
    return {"onnxruntime_web": VERSION, "flavours": {f: list(FLAVOURS[f]) for f in flavours}}


class RuntimeUnavailable(RuntimeError):
    """ONNX Runtime Web is not in the cache and cannot be fetched (no network, bad tarball)."""


def _check_integrity(data: bytes, source: str) -> None:
    digest = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
    if digest != INTEGRITY:
        raise RuntimeUnavailable(f"{source}: sha512 integrity {digest[:30]}... does not match the "
                                 f"pinned onnxruntime-web {VERSION} ({INTEGRITY[:30]}...); refusing it")


def _read_tarball() -> tuple[bytes, str]:
    local = os.environ.get("PIX2PIX_ORT_WEB_TARBALL")
    if local:
        return Path(local).read_bytes(), local
    log.info("fetching onnxruntime-web %s from the npm registry (once; %s)", VERSION, TARBALL_URL)
    try:
        with urllib.request.urlopen(TARBALL_URL, timeout=120) as resp:
            return resp.read(), TARBALL_URL
    except OSError as e:
        raise RuntimeUnavailable(
            f"cannot download onnxruntime-web {VERSION} ({e}); the in-browser studio needs it once. "
            f"Connect to the npm registry, or download {TARBALL_URL} elsewhere and set "
            f"PIX2PIX_ORT_WEB_TARBALL=/path/to/it") from None


def runtime_dir(*, fetch: bool = True) -> Path:
    """The folder holding :data:`FILES` of the pinned ONNX Runtime Web, verified.

    Downloads and unpacks it on first use when ``fetch``; raises :class:`RuntimeUnavailable`
    when it is missing and cannot be had.
    """
    folder = cache_dir() / "onnxruntime-web" / VERSION
    if (folder / _DONE).is_file() and all((folder / f).is_file() for f in FILES):
        return folder
    if not fetch:
        raise RuntimeUnavailable(f"onnxruntime-web {VERSION} is not in {folder}; "
                                 f"`pix2pix export --web` fetches it once")
    data, source = _read_tarball()
    _check_integrity(data, source)
    folder.parent.mkdir(parents=True, exist_ok=True)
    # Unpack beside the final folder and rename, so a crash never leaves a half-written runtime.
    tmp = Path(tempfile.mkdtemp(prefix=f".{VERSION}-", dir=folder.parent))
    os.chmod(tmp, 0o755)  # mkdtemp's 0700 would hide the runtime from a server run as another user
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            for name in FILES:
                member = f"package/dist/{name}" if name != "package.json" else "package/package.json"
                src = tar.extractfile(member)
                if src is None:
                    raise RuntimeUnavailable(f"{source} has no {member}")
                (tmp / name).write_bytes(src.read())
        (tmp / _DONE).write_text(INTEGRITY + "\n")
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("onnxruntime-web %s verified and unpacked in %s", VERSION, folder)
    return folder


__all__ = ["VERSION", "FLAVOURS", "FILES", "runtime_dir", "runtime_config", "RuntimeUnavailable", "INTEGRITY"]
