"""export.stages: the page's model cut into consecutive stages computes what the whole model does,
cuts only before convolutions and never through constants, and joins back into the one model."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

from pix2pix.checkpoint import PretrainedInfo
from pix2pix.config import ModelConfig
from pix2pix.export.inference_graph import for_inference
from pix2pix.inference.onnx import export_checked, ort_session, run_onnx
from pix2pix.export.stages import CUT_BEFORE, join_stages, split_stages
from pix2pix.export.web import fp16_weights
from pix2pix.models import build_generator


def staged(parts: list[bytes], x: np.ndarray) -> np.ndarray:
    """Run ``parts`` one after another, each fed the values it names from those before it."""
    values = {"input": x}
    for part in parts:
        s = ort_session(part, threads=1)
        out = s.run(None, {i.name: values[i.name] for i in s.get_inputs()})
        values.update(zip((o.name for o in s.get_outputs()), out))
    return values["output"]


@pytest.fixture(scope="module", params=["resize", "transpose"])
def web_graph(request, tmp_path_factory) -> bytes:
    torch.manual_seed(0)
    cfg = ModelConfig(generator="unet_128", base_channels=8, upsample=request.param)
    fast, _ = for_inference(build_generator(cfg).eval())
    path = tmp_path_factory.mktemp("stages") / "model.onnx"
    return export_checked(fast, PretrainedInfo(model=cfg, image_size=128), path).path.read_bytes()


@pytest.mark.parametrize("fp16", [False, True])
def test_stages_compute_the_whole_model_and_join_back_into_it(web_graph, fp16):
    model = fp16_weights(web_graph) if fp16 else web_graph
    parts = split_stages(model, 4)
    assert len(parts) == 4
    x = np.random.default_rng(0).uniform(-1, 1, (1, 3, 128, 256)).astype(np.float32)  # not the cut size (256²)
    whole = run_onnx(ort_session(model, threads=1), x)
    assert np.array_equal(staged(parts, x), whole)
    joined = join_stages(parts)
    assert np.array_equal(run_onnx(ort_session(joined, threads=1), x), whole)
    assert len(onnx.load_from_string(joined).graph.node) == len(onnx.load_from_string(model).graph.node)
    graphs = [onnx.load_from_string(p).graph for p in parts]
    weights = lambda gs: sorted(i.name for g in gs for i in g.initializer if np.prod(i.dims) >= 16)  # noqa: E731
    assert weights(graphs) == weights([onnx.load_from_string(model).graph])  # each weight in one stage
    for before, after in zip(graphs, graphs[1:]):
        cut = [i.name for i in after.input]
        assert cut == [o.name for o in before.output]  # each stage takes what the one before gave
        first = next(n for n in after.node if n.op_type != "Cast")  # (Casts: the fp16 weights')
        assert first.op_type in CUT_BEFORE  # never between a convolution and its activation
        crossing = {n.output[0] for g in graphs for n in g.node if n.op_type == "Cast"}
        assert not crossing & set(cut)  # fp16 weights' Casts stay with the stage that uses them


def test_a_graph_without_convolutions_stays_whole():
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, "h", "w"])
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3, "h", "w"])
    graph = helper.make_graph([helper.make_node("Tanh", ["input"], ["output"])], "tanh", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]).SerializeToString()
    assert split_stages(model, 4) == [model]
