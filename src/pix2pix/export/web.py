"""`pix2pix export --web DIR`: a trained model as a self-contained page that translates live in
the browser (ONNX Runtime Web in a Web Worker), from disk or any static host, with no server.

The folder::

    index.html            the studio page (the served studio's own files, serve/static)
    static/               studio.js, studio.css, worker.js, png.js, inbrowser.js
    web.js                the model's config and which script holds which file, for the page
    examples/             held-out inputs and their `pix2pix translate` outputs (export.examples)
    examples.js           the example inputs again, base64 in a script (the page opens on them)
    config.json           the same config for people and other tools (palette, direction, ...)
    model.onnx.js         the ONNX model, base64 in a script, cut in a few consecutive stages
                          (export.stages: a stale run is dropped between two); by default each
                          stage's weights travel as float16 beside it (export.half_storage)
    runtime/ort-*.js      ONNX Runtime Web (wasm; webgpu unless --no-webgpu), base64 in scripts
    coi-sw.js             service worker giving cross-origin isolation (WASM threads) over HTTP
    README.txt            how to open and host it

Why scripts holding base64 rather than the raw .onnx/.wasm files: a page opened from file:// may
not fetch() its own folder, but it may run <script src> from it; this one form then works from
disk and from every host alike. The cost is a third more bytes on disk (gzip on a host takes most
of it back); :func:`read_model_bytes` gives the ONNX file back (its stages joined).
"""
from __future__ import annotations

import base64
import json
import logging
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

from ..inference.description import count_parameters, describe
from ..inference.translator import Translator
from .examples import FOLDER as EXAMPLES, ExampleInput, find_inputs, write_examples
from ..inference.onnx import FP16_TOLERANCE, check_sample, export_fast, ort_session, run_onnx
from . import half_storage
from .stages import join_stages, split_stages
from .web_runtime import FLAVOURS, VERSION, runtime_config, runtime_dir

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent.parent / "serve" / "static"
PAGE_FILES = ("studio.js", "studio.css", "worker.js", "png.js", "inbrowser.js", "picker.js",
              "snap.js", "video.js")
MARKER = "<!-- pix2pix:web -->"
FORMAT = "pix2pix-web"
_WRAPPERS = {"wasm": "runtime/ort-wasm.js", "webgpu": "runtime/ort-webgpu.js"}
_B64 = re.compile(r'\[("[^"]*")\]\s*=\s*"([A-Za-z0-9+/=]*)"')
MODEL = "model.onnx"  # the model's entry in model.onnx.js; its stages are "model.onnx#0", "#1", ...
HALF = "weights.fp16"  # a stage's float16 weights (half_storage): "weights.fp16#0", ... or whole
# A staged float16 model's stages joined into one graph over the same blobs (whole_graph): the
# page runs an edit on it when nothing will preempt the run (no stage boundaries to cross: each
# costs a copy of the tensors in flight, ~1.5-2 ms at 256^2), its stages while the pen is down.
WHOLE = "model.whole.onnx"

COI_WORKER = """// Cross-origin isolation for hosts that cannot send headers (python -m http.server, GitHub Pages):
// every response of this folder is re-served with COOP/COEP, which WebAssembly threads need.
self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));
self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.cache === "only-if-cached" && request.mode !== "same-origin") return;
  event.respondWith(fetch(request).then((response) => {
    if (response.status === 0) return response;
    const headers = new Headers(response.headers);
    headers.set("Cross-Origin-Opener-Policy", "same-origin");
    headers.set("Cross-Origin-Embedder-Policy", "require-corp");
    return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
  }));
});
"""

README = """pix2pix studio for {name} ({generator}, {precision}), exported by `pix2pix export --web`.

Open index.html in a browser: it runs offline, with no server (ONNX Runtime Web {ort}, WASM on
one thread from a file). Faster, with WebAssembly threads: serve this folder, e.g.
    python -m http.server -d {folder} 8000      then open http://localhost:8000/
(the page's service worker, coi-sw.js, makes it cross-origin isolated). On a static host that
lets you set headers, send these for every file instead:
    Cross-Origin-Opener-Policy: same-origin
    Cross-Origin-Embedder-Policy: require-corp
The page loads nothing from any other site. ONNX Runtime Web is MIT-licensed (Microsoft).
"""


@dataclass
class WebExport:
    """What `export --web` wrote: sizes in MB (10^6 bytes) and the parity of its ONNX model."""

    folder: Path
    precision: str
    model_mb: float       # the model as the page downloads it (its stages, float16 weights by default)
    runtime_mb: float     # ONNX Runtime Web's .wasm/.mjs files themselves
    folder_mb: float      # everything on disk (the base64 wrappers are 4/3 of the raw bytes)
    max_abs_diff: Optional[float]  # ONNX Runtime vs PyTorch fp32, in [-1, 1] units
    flavours: tuple[str, ...]
    note: str = ""


def _wrapper(files: dict[str, bytes]) -> str:
    lines = ["// Generated by pix2pix export --web: files as base64, readable by a page opened from disk.",
             "self.PIX2PIX_FILES = self.PIX2PIX_FILES || {};"]
    for name, data in files.items():
        lines.append(f"self.PIX2PIX_FILES[{json.dumps(name)}] = \"{base64.b64encode(data).decode()}\";")
    return "\n".join(lines) + "\n"


def read_model_bytes(folder: str | Path) -> bytes:
    """The ONNX model of an exported folder, as the page's sessions hold it: decoded from its
    model.onnx.js, float16 weights widened to float32, stages joined."""
    text = (Path(folder) / "model.onnx.js").read_text()
    entries = {json.loads(name): base64.b64decode(data) for name, data in _B64.findall(text)}
    names = [MODEL] if MODEL in entries else [f"{MODEL}#{k}" for k in range(len(entries)) if f"{MODEL}#{k}" in entries]
    if not names:
        raise ValueError(f"{folder}/model.onnx.js holds no model; re-export the folder")
    models = []
    for name in names:
        half = entries.get(name.replace(MODEL, HALF, 1))
        models.append(entries[name] if half is None else half_storage.unpack(entries[name], half))
    return models[0] if names == [MODEL] else join_stages(models)


def model_entries(model: bytes, *, half: bool = False) -> dict[str, bytes]:
    """model.onnx.js's entries for ``model``: its stages (export.stages), or the model whole; with
    ``half``, each one's float32 weights stored as float16 beside it (half_storage.pack) and, for
    a staged model, WHOLE (whole_graph) over those float16 blobs."""
    entries = {MODEL: model}
    try:
        stages = split_stages(model)
        if len(stages) > 1:
            entries = {f"{MODEL}#{k}": s for k, s in enumerate(stages)}
    except Exception as e:  # noqa: BLE001 - a graph the cutter does not know (an .onnx given as it is)
        log.warning("cannot cut the model into stages (%s: %s); the page runs it whole, so a stroke's "
                    "last edit may wait for a stale run", type(e).__name__, e)
    if not half:
        return entries
    packed = {}
    for name, data in entries.items():
        packed[name], packed[name.replace(MODEL, HALF, 1)] = half_storage.pack(data)
    if MODEL not in entries:
        packed[WHOLE] = whole_graph([packed[f"{MODEL}#{k}"] for k in range(len(entries))])
    return packed


def whole_graph(stages: list[bytes]) -> bytes:
    """Packed stage graphs (half_storage.pack) -> one graph of all their nodes, whose initializers
    name stage k's float16 blob half_storage.PART_WEIGHTS.format(k): no weight is stored twice."""
    return join_stages([half_storage.relocated(s, half_storage.PART_WEIGHTS.format(k))
                        for k, s in enumerate(stages)])


def web_config(translator: Translator, name: str, precision: str, parameters: int,
               flavours: tuple[str, ...] = tuple(FLAVOURS)) -> dict[str, Any]:
    """The page's description of the model: the server's /api/models entry (the one
    ModelDescription), the runtime flavours the folder holds, and the export's own facts."""
    return {"format": FORMAT, "format_version": 1, **describe(translator, name, parameters).to_dict(),
            "precision": precision, **runtime_config(flavours)}


def _onnx_bytes(translator: Translator, source: Path, fp32: bool, work: Path) -> tuple[bytes, str, Optional[float], str]:
    """(model bytes, precision, max |diff| vs PyTorch, note): for "fp16", the float32 model with
    its weights rounded to float16 (model_entries stores them as float16), unless asked for fp32 or
    unless they fail the parity check, in which case fp32 is written and the note says why."""
    if translator.generator is None:  # an .onnx file: exported already, taken as it is
        return source.read_bytes(), "as given", None, ""
    # The graph the page runs: batch norm folded, resize-convs as transposed convolutions at the
    # input resolution (same function, fewer multiply-adds), held to the trained generator.
    r, counts = export_fast(translator.generator, translator.info, work / "model.onnx")
    log.info("web graph: %s", counts or "the plain generator's")
    full = r.path.read_bytes()
    if fp32:
        return full, "fp32", r.max_abs_diff, ""
    import numpy as np

    half = half_storage.rounded(full)  # the weights the page computes with (its download: float16)
    x = check_sample(translator.info).numpy()
    diff = float(np.abs(run_onnx(ort_session(half), x) - run_onnx(ort_session(full), x)).max())
    log.info("fp16 weights vs fp32 on %s: max |diff| %.2e", x.shape, diff)
    if diff < FP16_TOLERANCE:
        return half, "fp16", r.max_abs_diff + diff, ""
    note = (f"fp16 weights change the output by {diff:.3g} (limit {FP16_TOLERANCE:g}, in [-1, 1] units); "
            f"wrote fp32 weights instead")
    log.warning("%s", note)
    return full, "fp32", r.max_abs_diff, note


def _check_target(folder: Path) -> None:
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"--web {folder} is a file; give a folder to write the page into")
    if folder.is_dir() and any(folder.iterdir()):
        cfg = folder / "config.json"
        try:
            ours = json.loads(cfg.read_text()).get("format") == FORMAT
        except (OSError, ValueError, AttributeError):
            ours = False
        if not ours:
            raise ValueError(f"--web {folder} is a non-empty folder that is not a pix2pix web export; "
                             f"give a new or empty folder (nothing there was changed)")


def _examples(translator: Translator, source: Path, out: Path,
              examples: Optional[Sequence[ExampleInput]]) -> tuple[list[dict], dict[str, str]]:
    """Store the examples (given, else found with the model) in out/examples/ and their inputs in
    examples.js; returns (index entries, file map for web.js)."""
    if examples is None:
        examples = find_inputs(source)[0]
    if not examples:
        return [], {}
    entries = write_examples(translator, examples, out / EXAMPLES)
    files = {f"{EXAMPLES}/{e['input']}": (out / EXAMPLES / e["input"]).read_bytes() for e in entries}
    (out / "examples.js").write_text(_wrapper(files))
    return entries, {f: "examples.js" for f in files}


def export_web(translator: Translator, folder: str | Path, *, source: str | Path, name: str,
               fp32: bool = False, webgpu: bool = True,
               examples: Optional[Sequence[ExampleInput]] = None) -> WebExport:
    """Write the self-contained studio for ``translator`` into ``folder`` (new, empty or a previous
    export, which is replaced whole). Fetches ONNX Runtime Web into the cache on first use.

    ``examples``: inputs the page opens on (default: those stored with the model, else a few of
    the run's held-out data, else none: a blank canvas)."""
    folder = Path(folder)
    _check_target(folder)
    runtime = runtime_dir()  # first: no network should fail before minutes of export
    flavours = ("wasm", "webgpu") if webgpu else ("wasm",)
    parameters = count_parameters(translator)
    folder.parent.mkdir(parents=True, exist_ok=True)
    # Built beside the target and moved in at the end: a failed export leaves the old one whole.
    work = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        model, precision, diff, note = _onnx_bytes(translator, Path(source), fp32, work)
        (work / "model.onnx").unlink(missing_ok=True)
        out = work / "page"
        (out / "static").mkdir(parents=True)
        (out / "runtime").mkdir()
        config = web_config(translator, name, precision, parameters, flavours)
        files = {"model.onnx": "model.onnx.js"}
        config["examples"], example_files = _examples(translator, Path(source), out, examples)
        files.update(example_files)
        runtime_bytes = 0
        for flavour in flavours:
            data = {f: (runtime / f).read_bytes() for f in FLAVOURS[flavour]}
            runtime_bytes += sum(map(len, data.values()))
            (out / _WRAPPERS[flavour]).write_text(_wrapper(data))
            files.update({f: _WRAPPERS[flavour] for f in FLAVOURS[flavour]})
        entries = model_entries(model, half=precision == "fp16")
        (out / "model.onnx.js").write_text(_wrapper(entries))
        (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        (out / "web.js").write_text("// Generated by pix2pix export --web.\nself.PIX2PIX_WEB = "
                                    + json.dumps({"config": config, "files": files}, indent=1) + ";\n")
        page = (STATIC / "index.html").read_text()
        assert MARKER in page, "the studio page lost its export marker"
        (out / "index.html").write_text(page.replace(MARKER, '<script src="web.js"></script>'))
        for f in PAGE_FILES:
            shutil.copyfile(STATIC / f, out / "static" / f)
        (out / "coi-sw.js").write_text(COI_WORKER)
        (out / "README.txt").write_text(README.format(name=name, generator=config["generator"],
                                                      precision=precision, ort=VERSION, folder=folder))
        if folder.exists():
            shutil.rmtree(folder)
        shutil.move(str(out), str(folder))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    total = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    log.info("web export of %s (%s) in %s: %.1f MB", name, precision, folder, total / 1e6)
    return WebExport(folder=folder, precision=precision, model_mb=sum(map(len, entries.values())) / 1e6,
                     runtime_mb=runtime_bytes / 1e6, folder_mb=total / 1e6, max_abs_diff=diff,
                     flavours=flavours, note=note)


__all__ = ["export_web", "WebExport", "read_model_bytes", "web_config", "FORMAT"]
