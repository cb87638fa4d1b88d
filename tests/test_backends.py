"""Backends behind the Translator: same numbers from each, auto's choice logged, clear refusals."""
import json
import logging

import numpy as np
import pytest
import torch

import pix2pix.inference.backends as backends
import pix2pix.inference.onnx as export
from pix2pix import Translator
from pix2pix.inference.backends import choose_backend

from lively import enliven


@pytest.fixture(scope="module")
def x():
    # Non-square and not a multiple of 128: padding and cropping are part of what must agree.
    return torch.rand(2, 3, 150, 260, generator=torch.Generator().manual_seed(3)) * 2 - 1


@pytest.fixture(scope="module")
def eager_out(lively_model_dir, x):
    return Translator.from_pretrained(lively_model_dir, device="cpu", backend="eager").translate_tensor(x)


def test_onnxruntime_backend_matches_eager(lively_model_dir, x, eager_out):
    t = Translator.from_pretrained(lively_model_dir, device="cpu", backend="onnxruntime")
    assert t.backend.name == "onnxruntime"
    assert eager_out.std() > 0.2
    assert (t.translate_tensor(x) - eager_out).abs().max() < 1e-4


def test_compile_backend_matches_eager(lively_model_dir, x, eager_out):
    t = Translator.from_pretrained(lively_model_dir, device="cpu", backend="compile")
    assert t.backend.name == "compile"
    assert (t.translate_tensor(x) - eager_out).abs().max() < 1e-4


def test_auto_picks_onnxruntime_on_cpu_and_says_so(lively_model_dir, caplog, x, eager_out):
    with caplog.at_level(logging.INFO, logger="pix2pix"):
        t = Translator.from_pretrained(lively_model_dir, device="cpu", backend="auto")
    assert t.backend.name == "onnxruntime"
    assert "backend auto -> onnxruntime on cpu" in caplog.text
    assert (t.translate_tensor(x) - eager_out).abs().max() < 1e-4


def test_auto_keeps_dropout_in_pytorch(lively_model_dir, caplog):
    with caplog.at_level(logging.INFO, logger="pix2pix"):
        t = Translator.from_pretrained(lively_model_dir, device="cpu", backend="auto", dropout=True)
    assert t.backend.name == "eager" and "dropout runs in PyTorch" in caplog.text
    with pytest.raises(ValueError, match="need --backend eager or compile"):
        Translator.from_pretrained(lively_model_dir, device="cpu", backend="onnxruntime", dropout=True)


def test_batch_statistics_run_on_every_backend(lively_model_dir, x, eager_out):
    # Each image's own statistics are an instance norm with batch norm's scale and shift: one output
    # per input, so ONNX Runtime runs them too, and they are not the running statistics' output.
    eager = Translator.from_pretrained(lively_model_dir, device="cpu", backend="eager", batch_stats=True)
    want = eager.translate_tensor(x)
    assert (want - eager_out).abs().mean() > 0.05
    ort = Translator.from_pretrained(lively_model_dir, device="cpu", backend="auto", batch_stats=True)
    assert ort.backend.name == "onnxruntime" and ort.info.model.test_statistics == "batch"
    assert (ort.translate_tensor(x) - want).abs().max() < 1e-4


def test_auto_without_onnxruntime_falls_back_to_eager(monkeypatch):
    monkeypatch.setattr(backends, "onnxruntime_available", lambda device: False)
    name, reason = choose_backend(torch.device("cpu"), deterministic=True)
    assert name == "eager" and "pip install" in reason
    assert choose_backend(torch.device("cuda"), deterministic=True)[0] == "eager"


def test_export_for_the_backend_is_cached(lively_model_dir, monkeypatch, x, eager_out):
    Translator.from_pretrained(lively_model_dir, device="cpu", backend="onnxruntime")  # cached by now

    def no_export(*a, **k):
        raise AssertionError("exported again although the weights did not change")

    monkeypatch.setattr(export, "export_fast", no_export)
    t = Translator.from_pretrained(lively_model_dir, device="cpu", backend="onnxruntime")
    assert (t.translate_tensor(x) - eager_out).abs().max() < 1e-4
    # Different weights, different file.
    t.generator = None
    other = Translator.from_pretrained(lively_model_dir, device="cpu")
    with torch.no_grad():
        other.generator.up[0].conv.bias.add_(0.1)
    with pytest.raises(AssertionError, match="exported again"):
        backends.make_backend("onnxruntime", other.generator, other.info, torch.device("cpu"))


def test_the_backend_runs_the_rewritten_graph_of_a_resize_decoder(tmp_path, monkeypatch):
    """A resize-conv decoder (the default recipe's) runs as transposed convolutions at the input
    resolution in the cached export: no Resize node left, the same numbers as eager."""
    import onnx

    from pix2pix.checkpoint import PretrainedInfo, save_pretrained
    from pix2pix.config import ModelConfig
    from pix2pix.models import build_generator

    monkeypatch.setenv("PIX2PIX_CACHE", str(tmp_path / "cache"))
    torch.manual_seed(0)
    cfg = ModelConfig(generator="unet_128", base_channels=8, upsample="resize")
    g = enliven(build_generator(cfg), lambda: torch.rand(4, 3, 128, 128) * 2 - 1)
    model = save_pretrained(g, PretrainedInfo(model=cfg, image_size=128), tmp_path / "model")
    x = torch.rand(1, 3, 150, 260, generator=torch.Generator().manual_seed(3)) * 2 - 1
    want = Translator.from_pretrained(model, device="cpu", backend="eager").translate_tensor(x)
    t = Translator.from_pretrained(model, device="cpu", backend="onnxruntime")
    assert want.std() > 0.2 and (t.translate_tensor(x) - want).abs().max() < 1e-4
    (cached,) = (tmp_path / "cache" / "onnx").glob("*.onnx")
    ops = [n.op_type for n in onnx.load(str(cached)).graph.node]
    assert "Resize" not in ops and "BatchNormalization" not in ops and ops.count("ConvTranspose") == 7


def test_unknown_backend_is_named(lively_model_dir):
    with pytest.raises(ValueError, match="backend 'tensorrt' is not known; choose one of auto, eager"):
        Translator.from_pretrained(lively_model_dir, device="cpu", backend="tensorrt")


def test_translate_batch_equals_one_by_one(lively_model_dir):
    t = Translator.from_pretrained(lively_model_dir, device="cpu", backend="onnxruntime")
    rng = np.random.default_rng(0)
    arrays = [rng.random((64, 96, 3), dtype=np.float32), rng.random((70, 50, 3), dtype=np.float32),
              rng.random((64, 96, 3), dtype=np.float32), rng.random((64, 96, 4), dtype=np.float32)]
    together = t.translate_batch(arrays)
    for a, b in zip(arrays, together):
        assert np.abs(t.translate_array(a) - b).max() < 1e-5 and b.shape[:2] == a.shape[:2]
    assert together[3].shape[2] == 4  # alpha comes back


_EXPORT_ONCE = """
import logging, sys, time
logging.basicConfig(level=logging.INFO, stream=sys.stderr)
import torch
from pix2pix import Translator
torch.set_num_threads(1)
t = Translator.from_pretrained(sys.argv[1], device="cpu", backend="onnxruntime")
x = torch.linspace(-1, 1, 3 * 64 * 64).reshape(1, 3, 64, 64)
print(float(t.translate_tensor(x).abs().sum()))
"""


def test_onnx_cache_two_processes_at_once_and_a_truncated_file(lively_model_dir, tmp_path):
    """Two real processes exporting the same weights into one empty cache both succeed with
    the same answer; a truncated cache file is found by its recorded size and hash, never used,
    and exported again."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, PIX2PIX_CACHE=str(tmp_path / "cache"), OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-c", _EXPORT_ONCE, str(lively_model_dir)]
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
    assert outs[0][0] == outs[1][0]
    cached = sorted((tmp_path / "cache" / "onnx").glob("*.onnx"))
    assert len(cached) == 1 and not [p for p in cached[0].parent.iterdir() if p.name.startswith(".")]
    record = json.loads(cached[0].with_name(cached[0].name + ".json").read_text())
    assert record["size"] == cached[0].stat().st_size and len(record["sha256"]) == 64
    # Truncated (a crash mid-copy, a full disk): detected, not used, exported again.
    data = cached[0].read_bytes()
    cached[0].write_bytes(data[: len(data) // 2])
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "not using the cached export" in again.stderr and "truncated" in again.stderr
    assert again.stdout == outs[0][0]
    # (Exports are not byte-identical run to run, so the new file is checked against its new record.)
    record = json.loads(cached[0].with_name(cached[0].name + ".json").read_text())
    assert cached[0].stat().st_size == record["size"] > len(data) // 2
