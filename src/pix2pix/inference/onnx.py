"""ONNX export of a generator, with a parity check against PyTorch run in ONNX Runtime.

The exported graph maps ``input`` (N, C_in, H, W) float32 in [-1, 1] to ``output``
(N, C_out, H, W) float32 in [-1, 1]; N, H and W are dynamic (H and W multiples of the generator's
``multiple``, which the graph's dimension names say, e.g. ``256*hb``). The pretrained config travels
in the model's metadata (key ``pix2pix``), so ``Translator.from_pretrained("model.onnx")`` and other
runtimes know the channels, multiple and direction without the original directory.

Options: ``fp16`` stores weights and computes in half precision behind float32 inputs and outputs
(half the file; for GPUs, WebGPU and phones); :func:`quantize_int8` makes a dynamically quantised
copy for CPUs (int8 convolution weights; transposed convolutions stay fp32; a unet_256 file
shrinks to about a quarter, 30.3 -> 7.6 MB) whose quality change is reported as PSNR against the
fp32 output, and whose speed is measured at export time on the exporting machine: int8 is not
faster on every CPU (without VNNI/AMX it can be several times slower than fp32).
"""
from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import tempfile
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

import numpy as np
import torch
from torch import nn

from ..util.cache import cache_dir
from ..checkpoint import PretrainedInfo, info_to_dict
from ..config import to_dict
from ..util.fsutil import atomic_write_text, fsync_file
from ..models import generator_multiple
from ..util.ranges import to_signed
from .inference_graph import for_inference

log = logging.getLogger(__name__)

OPSET = 18  # the dynamo exporter's lowest native opset; ONNX Runtime 1.16+ runs it
INPUT_NAME, OUTPUT_NAME = "input", "output"
METADATA_KEY = "pix2pix"
FP32_TOLERANCE = 1e-4
FP16_TOLERANCE = 2e-2


class _HalfPrecision(nn.Module):
    """Run ``net`` in float16 behind a float32 interface, so callers never see the difference."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net.half()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.half()).float()


@contextmanager
def _quiet_exporter() -> Iterator[None]:
    """The exporter and quantiser log progress lines and warnings (e.g. about optional torchvision
    ops) at INFO/WARNING; keep a CLI run's output to our own lines."""
    # onnxruntime.quantization logs on the root logger, hence "" among the names.
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._export", "onnxscript",
                                              "onnx_ir", "torch.fx.experimental.symbolic_shapes", "")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _require(module: str) -> None:
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise ValueError(f"ONNX export needs the '{module}' package: pip install 'pix2pix[export]'")


def export_onnx(generator: nn.Module, info: PretrainedInfo, out: str | Path, *, fp16: bool = False,
                opset: int = OPSET) -> Path:
    """Write ``generator`` (eval mode, on CPU) to ``out`` with dynamic batch, height and width."""
    return _export_onnx(generator, info, out, fp16=fp16, opset=opset)[0]


def _export_onnx(generator: nn.Module, info: PretrainedInfo, out: str | Path, *, fp16: bool,
                 opset: int) -> tuple[Path, int]:
    """export_onnx, also returning the opset actually written (the exporter may keep its own)."""
    _require("onnxscript")
    if opset < 17:
        raise ValueError(f"opset {opset} is too old; pix2pix exports opset 17 or newer (default {OPSET})")
    from torch.export import Dim

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    m = generator_multiple(info.model.generator)
    net: nn.Module = copy.deepcopy(generator).to("cpu", torch.float32).eval()
    if fp16:
        net = _HalfPrecision(net).eval()
    # The example must not be 1 along a dynamic axis, or torch.export specialises it to 1.
    example = torch.zeros(2, info.model.in_channels, 2 * m, 3 * m)
    # Sides are declared as multiples of the generator's multiple: the U-Net's skip connections only
    # line up for those, and saying so lets the exporter prove the graph shape-correct for all of them.
    dims = {0: Dim("batch", min=1, max=4096), 2: m * Dim("hb", min=1, max=65536 // m),
            3: m * Dim("wb", min=1, max=65536 // m)}
    with _quiet_exporter(), torch.no_grad():
        program = torch.onnx.export(net, (example,), None, input_names=[INPUT_NAME],
                                    output_names=[OUTPUT_NAME], opset_version=opset, dynamo=True,
                                    dynamic_shapes={"x": dims}, external_data=False, verbose=False)
    model = program.model_proto
    written = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    if written != opset:
        # The exporter converts down from its native opset and keeps its own if that fails.
        log.warning("asked for opset %d, the exporter wrote opset %d", opset, written)
    meta = model.metadata_props.add()
    meta.key, meta.value = METADATA_KEY, json.dumps(info_to_dict(info) | {"fp16": fp16})
    model.producer_name = "pix2pix"
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_bytes(model.SerializeToString())
    os.replace(tmp, out)
    log.info("exported %s (%s, opset %d) to %s, %.1f MB", info.model.generator,
             "fp16" if fp16 else "fp32", written, out, out.stat().st_size / 1e6)
    return out, written


def read_onnx_info(path: str | Path) -> PretrainedInfo:
    """The PretrainedInfo stored in an ONNX file written by :func:`export_onnx`."""
    import onnx

    from ..checkpoint import info_from_dict

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # noqa: BLE001 - protobuf's DecodeError and friends
        raise ValueError(f"{path} is not a readable ONNX file ({type(e).__name__}: {str(e)[:200]}); "
                         f"it is truncated or not ONNX: re-export it with `pix2pix export`") from None
    meta = {p.key: p.value for p in model.metadata_props}
    if METADATA_KEY not in meta:
        raise ValueError(f"{path} has no pix2pix metadata: it was not written by `pix2pix export`, "
                         f"so its channels and size multiple are unknown; re-export it from the model dir")
    raw = json.loads(meta[METADATA_KEY])
    raw.pop("fp16", None)
    return info_from_dict(raw, source=str(path))


def ort_session(model: str | Path | bytes, *, device: str | torch.device = "cpu",
                threads: Optional[int] = None, spin: bool = True):
    """An ONNX Runtime session for ``model`` on ``device``, all graph optimisations on.

    ``spin``: the worker threads spin-wait for work after each run (ONNX Runtime's default: the
    lowest latency for runs that follow each other with nothing in between). False: they sleep; a
    spinning pool holds every core for a while after each run, taking them from whatever else runs
    meanwhile (the onnxruntime backend's case: :class:`~pix2pix.inference.backends.OnnxRuntimeBackend`)."""
    _require("onnxruntime")
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Follow torch's thread setting so one knob (torch.set_num_threads / OMP_NUM_THREADS) rules both.
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.log_severity_level = 3
    if not spin:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    device = torch.device(device)
    if device.type == "cuda":
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise ValueError("device cuda with --backend onnxruntime needs onnxruntime-gpu "
                             "(pip install onnxruntime-gpu); or use --backend eager")
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    elif device.type == "cpu":
        providers = ["CPUExecutionProvider"]
    else:
        raise ValueError(f"the onnxruntime backend does not run on device {device.type}; "
                         f"use --backend eager or --device cpu")
    source = model if isinstance(model, bytes) else str(model)
    try:
        return ort.InferenceSession(source, options, providers=providers)
    except Exception as e:  # noqa: BLE001 - onnxruntime raises its own types for a bad graph
        name = "the ONNX model" if isinstance(model, bytes) else str(model)
        first = str(e).strip().splitlines()[0][:300] if str(e).strip() else type(e).__name__
        raise ValueError(f"{name} cannot be loaded by ONNX Runtime ({first}); it is truncated, "
                         f"corrupt or not an ONNX file: re-export it with `pix2pix export`") from None


def run_onnx(session, x: np.ndarray) -> np.ndarray:
    """(N, C_in, H, W) float32 -> (N, C_out, H, W) float32 through an ONNX Runtime session."""
    return session.run([OUTPUT_NAME], {INPUT_NAME: np.ascontiguousarray(x, dtype=np.float32)})[0]


def quantize_int8(src: str | Path, dst: str | Path) -> Path:
    """Dynamic int8 quantisation for CPU: int8 conv weights, activations quantised per batch at run time.

    Transposed convolutions stay fp32 (ONNX Runtime has no integer kernel for them).
    """
    _require("onnxruntime")
    from onnxruntime.quantization import QuantType, quantize_dynamic

    dst = Path(dst)
    with _quiet_exporter():
        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8)
    return dst


def psnr_db(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two arrays in [-1, 1], both mapped to [0, 1] first."""
    mse = float(np.mean(((np.clip(a, -1, 1) - np.clip(b, -1, 1)) / 2) ** 2))
    return float("inf") if mse == 0 else 10 * float(np.log10(1.0 / mse))


@dataclass
class ExportReport:
    """What `pix2pix export` wrote and how closely each file matches PyTorch."""

    path: Path
    opset: int
    max_abs_diff: float
    check_shape: tuple[int, int, int, int]
    fp16: bool = False
    size_mb: float = 0.0
    int8_path: Optional[Path] = None
    int8_psnr_db: Optional[float] = None
    int8_size_mb: Optional[float] = None
    # Median ms per run of the check image on this machine, exported model vs int8 (INT8_RUNS each).
    ms_per_run: Optional[float] = None
    int8_ms_per_run: Optional[float] = None

    @property
    def int8_speedup(self) -> Optional[float]:
        """> 1: int8 is that many times faster here; < 1: slower."""
        if not self.ms_per_run or not self.int8_ms_per_run:
            return None
        return self.ms_per_run / self.int8_ms_per_run


INT8_RUNS = 5  # timed runs per model at export time (after one warm-up): seconds, not minutes


def median_ms(session, x: np.ndarray, runs: int = INT8_RUNS) -> float:
    """Median wall-clock ms of ``runs`` runs of ``x`` through ``session``, after one warm-up run."""
    import statistics
    import time

    run_onnx(session, x)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        run_onnx(session, x)
        times.append(time.perf_counter() - t)
    return 1000 * statistics.median(times)


# The smallest side a parity check uses: a ResNet's multiple is 4, and at 4 px its bottleneck is 1
# px, which its reflection padding cannot pad.
MIN_CHECK_SIDE = 32


def check_sample(info: PretrainedInfo, seed: int = 0) -> torch.Tensor:
    """A random (1, C_in, s, 2s) input in [-1, 1] for parity checks, s the generator's size multiple
    (at least MIN_CHECK_SIDE): non-square, so a check exercises both dynamic sides."""
    m = max(generator_multiple(info.model.generator), MIN_CHECK_SIDE)
    g = torch.Generator().manual_seed(seed)
    return to_signed(torch.rand(1, info.model.in_channels, m, 2 * m, generator=g))


def check_parity(generator: nn.Module, onnx_path: str | Path, x: torch.Tensor) -> tuple[float, np.ndarray]:
    """(max |PyTorch - ONNX Runtime|, ONNX output) for ``x`` (N, C_in, H, W) in [-1, 1].

    PyTorch runs the fp32 generator in eval mode on CPU, the reference every export is held to.
    """
    net = copy.deepcopy(generator).to("cpu", torch.float32).eval()
    with torch.no_grad():
        ref = net(x).numpy()
    got = run_onnx(ort_session(onnx_path), x.numpy())
    return float(np.abs(got - ref).max()), got


class ParityError(ValueError):
    """An export whose ONNX Runtime output differs from its PyTorch reference beyond the tolerance."""


def export_checked(generator: nn.Module, info: PretrainedInfo, out: str | Path, *, fp16: bool = False,
                   int8: bool = False, sample: Optional[torch.Tensor] = None, seed: int = 0,
                   opset: int = OPSET, reference: Optional[nn.Module] = None) -> ExportReport:
    """Export, then check it: ONNX Runtime vs PyTorch (``reference``, default ``generator`` itself:
    the trained model when ``generator`` is its rewrite) on ``sample`` or a random image.

    Raises ParityError when the fp32 difference reaches 1e-4 (2e-2 for fp16). With ``int8`` a
    quantised copy is written beside ``out`` (``*.int8.onnx``) and its PSNR against the exported
    model's output on the same image is reported, with the speed of both on this machine
    (INT8_RUNS timed runs each: int8 is slower than fp32 on CPUs without fast int8 instructions).
    """
    # The opset comes back from the export: re-reading the file for it would parse ~200 MB again.
    path, written = _export_onnx(generator, info, out, fp16=fp16, opset=opset)
    if sample is None:
        sample = check_sample(info, seed)
    diff, out_fp = check_parity(generator if reference is None else reference, path, sample)
    tolerance = FP16_TOLERANCE if fp16 else FP32_TOLERANCE
    report = ExportReport(path=path, opset=written, max_abs_diff=diff, check_shape=tuple(sample.shape), fp16=fp16,
                          size_mb=path.stat().st_size / 1e6)
    log.info("parity %s vs PyTorch fp32 on %s: max |diff| %.2e", "fp16" if fp16 else "fp32",
             tuple(sample.shape), diff)
    if not diff < tolerance:
        raise ParityError(f"{path}: ONNX Runtime output differs from PyTorch by {diff:.3g} "
                         f"(limit {tolerance:g}); the export is wrong, please report it with the model")
    if int8:
        qpath = quantize_int8(path, path.with_name(path.stem + ".int8.onnx"))
        q_session = ort_session(qpath)
        out_q = run_onnx(q_session, sample.numpy())
        report.int8_path, report.int8_psnr_db = qpath, psnr_db(out_q, out_fp)
        report.int8_size_mb = qpath.stat().st_size / 1e6
        log.info("int8 vs %s output: PSNR %.1f dB", "fp16" if fp16 else "fp32", report.int8_psnr_db)
        x = sample.numpy()
        report.ms_per_run = median_ms(ort_session(path), x)
        report.int8_ms_per_run = median_ms(q_session, x)
    return report


def export_fast(generator: nn.Module, info: PretrainedInfo, out: str | Path, *, fp16: bool = False,
                int8: bool = False, sample: Optional[torch.Tensor] = None,
                opset: int = OPSET) -> tuple[ExportReport, dict[str, int]]:
    """:func:`export_checked` of the graph ONNX Runtime runs fastest: ``generator`` rewritten by
    :func:`~pix2pix.inference.inference_graph.for_inference` (batch norm folded, resize-convs at the
    input resolution: the same function in fewer multiply-adds), then checked against the trained
    generator itself (the one parity check). Where the rewrite differs (a layer it does not know),
    the plain generator is exported instead, with a warning.

    Returns the report (``max_abs_diff`` against the trained generator) and the rewrite's counts
    ({} for the plain graph)."""
    fast, counts = for_inference(generator)
    try:
        report = export_checked(fast, info, out, fp16=fp16, int8=int8, sample=sample, opset=opset,
                                reference=generator)
        log.info("rewritten graph: %s", counts)
        return report, counts
    except ParityError as e:
        log.warning("the rewritten graph (%s) does not match the trained generator (%s); exporting the "
                    "plain graph instead (slower but right; please report it with the model)", counts, e)
    return export_checked(generator, info, out, fp16=fp16, int8=int8, sample=sample, opset=opset), {}


# The cached file's graph, in its name: exports of the plain graph (before the rewrite) are not reused.
CACHED_FORM = "fast"


def weights_key(generator: nn.Module, info: PretrainedInfo) -> str:
    """A digest of the weights, architecture and exporter versions: the cache file's name."""
    h = hashlib.sha256()
    h.update(json.dumps([to_dict(info.model), torch.__version__, OPSET]).encode())
    for name, t in sorted(generator.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().to("cpu").contiguous().numpy().tobytes())
    return h.hexdigest()[:24]


def _file_record(path: Path) -> dict:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return {"size": path.stat().st_size, "sha256": h.hexdigest()}


def _cache_problem(path: Path, record: Path) -> Optional[str]:
    """Why the cached export ``path`` must not be used (missing, no record, size or hash differ), or None."""
    if not path.is_file():
        return "missing"
    try:
        want = json.loads(record.read_text())
    except (OSError, ValueError):
        return f"its record {record.name} is missing or unreadable"
    if path.stat().st_size != want.get("size"):
        return f"it is {path.stat().st_size:,} bytes where {want.get('size')!r} were recorded (truncated?)"
    if _file_record(path)["sha256"] != want.get("sha256"):
        return "its SHA-256 differs from the recorded one (damaged)"
    return None


def cached_onnx(generator: nn.Module, info: PretrainedInfo) -> Path:
    """An fp32 ONNX file of ``generator`` (:func:`export_fast`'s graph), exported once per set of
    weights and reused after.

    Beside each export, ``NAME.onnx.json`` records its size and SHA-256; a file that does not
    match (a crash mid-copy, a full disk) is never used but exported again. Exports go to a name
    unique to the process and are renamed into place, so processes exporting the same weights at
    once never read each other's half-written file.
    """
    key = weights_key(generator, info)
    folder = cache_dir() / "onnx"
    path = folder / f"{info.model.generator}-{key}-{CACHED_FORM}.onnx"
    record = path.with_name(path.name + ".json")
    problem = _cache_problem(path, record)
    if problem is None:
        log.info("onnxruntime backend: using the cached export %s", path)
        return path
    if problem != "missing":
        log.warning("not using the cached export %s: %s; exporting again", path, problem)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        # A read-only home (containers): export to a temporary folder, valid for this process.
        folder = Path(tempfile.mkdtemp(prefix="pix2pix-onnx-"))
        path = folder / f"{info.model.generator}-{key}-{CACHED_FORM}.onnx"
        log.warning("cannot write the ONNX cache in %s; exporting to %s for this run", cache_dir(), folder)
        return export_fast(generator, info, path)[0].path
    log.info("onnxruntime backend: exporting the generator to ONNX once (cached at %s)", path)
    tmp = folder / f".{path.stem}.{os.getpid()}.{os.urandom(4).hex()}.onnx"
    try:
        export_fast(generator, info, tmp)
        fields = _file_record(tmp)
        fsync_file(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    atomic_write_text(record, json.dumps(fields) + "\n")
    # Another process may have replaced the file between the rename and the record (with an
    # export of the same weights): use it only if what is there now is what the record says.
    if _cache_problem(path, record) is not None:
        time.sleep(0.5)  # its record is on the way
        if _cache_problem(path, record) is not None:
            private = Path(tempfile.mkdtemp(prefix="pix2pix-onnx-")) / path.name
            log.warning("the cached export %s changed while it was written; using a private copy %s",
                        path, private)
            return export_fast(generator, info, private)[0].path
    return path


__all__ = ["export_onnx", "export_checked", "export_fast", "ParityError", "check_parity", "check_sample",
           "quantize_int8", "read_onnx_info", "ort_session", "run_onnx", "cached_onnx", "ExportReport", "OPSET",
           "psnr_db"]
