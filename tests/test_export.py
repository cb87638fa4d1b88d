"""ONNX export, checked in real ONNX Runtime sessions against PyTorch."""
import numpy as np
import onnx
import pytest
import torch

from pix2pix import Translator
from pix2pix.checkpoint import PretrainedInfo, load_pretrained
from pix2pix.config import ModelConfig
from pix2pix.inference.onnx import (check_parity, export_checked, export_onnx, ort_session, read_onnx_info,
                            run_onnx)
from pix2pix.models import build_generator, generator_multiple

from lively import enliven


@pytest.fixture(scope="module")
def exported(lively_model_dir, tmp_path_factory):
    """(generator, info, report) of the lively model exported fp32 with an int8 copy."""
    generator, info = load_pretrained(lively_model_dir)
    report = export_checked(generator, info, tmp_path_factory.mktemp("onnx") / "model.onnx", int8=True)
    return generator, info, report


def test_fp32_export_matches_pytorch(exported):
    generator, info, report = exported
    assert report.max_abs_diff < 1e-4
    model = onnx.load(str(report.path))
    onnx.checker.check_model(model)
    assert report.opset >= 17
    dims = model.graph.input[0].type.tensor_type.shape.dim
    # Batch, height and width are symbolic; channels fixed.
    assert [bool(d.dim_param) for d in dims] == [True, False, True, True] and dims[1].dim_value == 3
    assert read_onnx_info(report.path) == info


@pytest.mark.parametrize("shape", [(3, 3, 128, 384), (1, 3, 256, 128)])
def test_dynamic_batch_and_sides(exported, shape):
    generator, _, report = exported
    x = torch.rand(*shape, generator=torch.Generator().manual_seed(5)) * 2 - 1
    with torch.no_grad():
        ref = generator.eval()(x).numpy()
    got = run_onnx(ort_session(report.path), x.numpy())
    assert got.shape == ref.shape and np.abs(got - ref).max() < 1e-4
    assert ref.std() > 0.2  # a lively output: a wrong graph cannot hide in near-constant values


def test_parity_check_detects_a_different_network(exported):
    generator, _, report = exported
    other = build_generator(ModelConfig(generator="unet_128", base_channels=8))
    other.load_state_dict(generator.state_dict())
    with torch.no_grad():
        other.up[3].conv.weight.mul_(1.5)
    diff, _ = check_parity(other, report.path, torch.rand(1, 3, 128, 128) * 2 - 1)
    assert diff > 1e-2


def test_int8_quantisation_reports_its_quality(exported):
    _, _, report = exported
    assert report.int8_path.is_file() and report.int8_size_mb < report.size_mb
    assert 15 < report.int8_psnr_db < 80  # a real but bounded change, measured, not assumed
    ops = {n.op_type for n in onnx.load(str(report.int8_path)).graph.node}
    assert "ConvInteger" in ops or "QLinearConv" in ops


def test_int8_export_says_what_int8_gives_on_this_machine(exported):
    """The speed of both files is measured at export time, and the message names both figures
    (their values depend on the CPU: only their presence and the verdict's direction are checked)."""
    import dataclasses
    import re

    from pix2pix.cli.export import int8_verdict

    _, _, report = exported
    assert report.ms_per_run > 0 and report.int8_ms_per_run > 0
    text = int8_verdict(report, "fp32")
    assert f"{report.int8_ms_per_run:.1f} ms vs {report.ms_per_run:.1f} ms fp32" in text
    assert f"{report.size_mb:.1f} -> {report.int8_size_mb:.1f} MB" in text
    slower = int8_verdict(dataclasses.replace(report, ms_per_run=10.0, int8_ms_per_run=27.0), "fp32")
    assert slower.startswith("warning: int8 is 2.7x SLOWER than fp32") and "27.0 ms vs 10.0 ms" in slower
    faster = int8_verdict(dataclasses.replace(report, ms_per_run=30.0, int8_ms_per_run=10.0), "fp32")
    assert re.match(r"int8 here: 3\.0x faster than fp32 .* smaller", faster) and "warning" not in faster


def test_fp16_export(lively_model_dir, tmp_path, exported):
    generator, info = load_pretrained(lively_model_dir)
    report = export_checked(generator, info, tmp_path / "half.onnx", fp16=True)
    assert report.max_abs_diff < 2e-2
    assert report.size_mb < 0.6 * exported[2].size_mb
    inits = onnx.load(str(report.path)).graph.initializer
    assert {i.data_type for i in inits if len(i.dims) == 4} == {onnx.TensorProto.FLOAT16}


def test_onnx_file_loads_as_a_translator(exported, lively_model_dir):
    _, _, report = exported
    onnx_t = Translator.from_pretrained(report.path, device="cpu", backend="auto")
    eager = Translator.from_pretrained(lively_model_dir, device="cpu")
    assert onnx_t.backend.name == "onnxruntime" and onnx_t.generator is None
    x = np.random.default_rng(0).random((100, 150, 3), dtype=np.float32)  # padded inside, cropped back
    assert np.abs(onnx_t.translate_array(x) - eager.translate_array(x)).max() < 1e-4
    with pytest.raises(ValueError, match="only with the onnxruntime backend"):
        Translator.from_pretrained(report.path, device="cpu", dropout=True)
    # As README shows it: no backend named, an .onnx file runs on ONNX Runtime; eager is refused.
    assert Translator.from_pretrained(report.path, device="cpu").backend.name == "onnxruntime"
    with pytest.raises(ValueError, match="only with the onnxruntime backend"):
        Translator.from_pretrained(report.path, device="cpu", backend="eager")


def test_a_served_onnx_file_is_named_without_its_extension(exported, tmp_path):
    import shutil

    from pix2pix.serve.models import load_models

    _, _, report = exported
    maps = shutil.copy(report.path, tmp_path / "maps.onnx")
    (tmp_path / "export").mkdir()
    in_folder = shutil.copy(report.path, tmp_path / "export" / "model.onnx")
    assert [m.name for m in load_models([str(maps), str(in_folder)], device="cpu")] == ["maps", "export"]


def test_onnx_without_our_metadata_is_refused(tmp_path):
    x = onnx.helper.make_tensor_value_info("input", onnx.TensorProto.FLOAT, [1])
    y = onnx.helper.make_tensor_value_info("output", onnx.TensorProto.FLOAT, [1])
    graph = onnx.helper.make_graph([onnx.helper.make_node("Identity", ["input"], ["output"])], "g", [x], [y])
    onnx.save(onnx.helper.make_model(graph), tmp_path / "other.onnx")
    with pytest.raises(ValueError, match=r"other\.onnx has no pix2pix metadata"):
        Translator.from_pretrained(tmp_path / "other.onnx", device="cpu")


@pytest.mark.parametrize("arch", ["resnet_6blocks", "unet_256", "unet_alex_128"])
def test_every_architecture_exports(arch, tmp_path):
    """unet_128 is covered above; a ResNet (reflection padding), the deepest U-Net at a small width
    and the U-Net with the AlexNet encoder (a gray input seen by AlexNet as RGB)."""
    cfg = ModelConfig(generator=arch, base_channels=4, in_channels=1, out_channels=2, norm="instance")
    g = build_generator(cfg).eval()
    path = export_onnx(g, PretrainedInfo(model=cfg), tmp_path / "m.onnx")
    m = max(generator_multiple(arch), 32)  # ResNets reflect-pad: they need a few px at the bottleneck
    x = torch.rand(2, 1, m, 2 * m) * 2 - 1
    diff, _ = check_parity(g, path, x)
    assert diff < 1e-4


@pytest.mark.parametrize("arch", ["unet_256", "resnet_6blocks", "unet_alex_128"])
@pytest.mark.parametrize("fp16", [False, True])
def test_export_fast_writes_the_rewritten_graph_held_to_the_trained_model(arch, fp16, tmp_path):
    """`pix2pix export` and the onnxruntime backend: a resize-conv decoder leaves as transposed
    convolutions at the input resolution (no Resize node), batch norm folded, the same function."""
    from pix2pix.inference.onnx import export_fast

    torch.manual_seed(0)
    cfg = ModelConfig(generator=arch, base_channels=4, upsample="resize")
    mult = max(generator_multiple(arch), 32)
    g = enliven(build_generator(cfg), lambda: torch.rand(4, 3, mult, mult) * 2 - 1)
    report, counts = export_fast(g, PretrainedInfo(model=cfg), tmp_path / "m.onnx", fp16=fp16)
    ops = [n.op_type for n in onnx.load(str(report.path)).graph.node]
    assert counts["resize_conv"] > 0 and "Resize" not in ops and ops.count("ConvTranspose") >= counts["resize_conv"]
    if arch == "unet_256":  # (the AlexNet encoder's batch norms follow a ReLU: nothing to fold them into)
        assert "BatchNormalization" not in ops
    x = torch.rand(1, 3, mult, 2 * mult) * 2 - 1
    diff, out = check_parity(g, report.path, x)
    assert out.std() > 0.05 and diff < (2e-2 if fp16 else 1e-4) and report.max_abs_diff < (2e-2 if fp16 else 1e-4)


def test_export_fast_falls_back_to_the_plain_graph_when_the_rewrite_differs(tmp_path, monkeypatch, caplog):
    """A rewrite that does not compute the trained function is caught by the one parity check, and
    the plain generator is exported instead, with a warning."""
    import logging

    import pix2pix.inference.onnx as onnx_export

    torch.manual_seed(0)
    cfg = ModelConfig(generator="unet_128", base_channels=4, upsample="resize")
    g = enliven(build_generator(cfg), lambda: torch.rand(4, 3, 128, 128) * 2 - 1)
    right = onnx_export.for_inference

    def wrong(generator):
        fast, counts = right(generator)
        with torch.no_grad():
            next(fast.parameters()).add_(0.5)
        return fast, counts

    monkeypatch.setattr(onnx_export, "for_inference", wrong)
    with caplog.at_level(logging.WARNING, logger="pix2pix"):
        report, counts = onnx_export.export_fast(g, PretrainedInfo(model=cfg), tmp_path / "m.onnx")
    assert counts == {} and "exporting the plain graph instead" in caplog.text
    ops = [n.op_type for n in onnx.load(str(report.path)).graph.node]
    assert "Resize" in ops and report.max_abs_diff < 1e-4
    diff, _ = check_parity(g, report.path, torch.rand(1, 3, 128, 256) * 2 - 1)
    assert diff < 1e-4
