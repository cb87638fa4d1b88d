"""export.stages: the page's model cut into consecutive stages computes what the whole model does,
cuts only before convolutions and never through constants, passes no value through a stage that
does not use it, is cut into as many stages as its work calls for, and joins back into the one model."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

from pix2pix.checkpoint import PretrainedInfo
from pix2pix.config import ModelConfig
from pix2pix.export.inference_graph import for_inference
from pix2pix.inference.onnx import export_checked, ort_session, run_onnx
from pix2pix.export.stages import CUT_BEFORE, MIN_STAGES, _macs, join_stages, split_stages, stage_count
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
    casts = {n.output[0] for g in graphs for n in g.node if n.op_type == "Cast"}
    given = {"input": -1}  # value -> the stage whose output it is
    for k, g in enumerate(graphs):
        inputs, outputs = [i.name for i in g.input], [o.name for o in g.output]
        assert all(given.get(name, k) < k for name in inputs)  # each input an earlier stage's output
        assert not set(inputs) & set(outputs)  # nothing passed on through a stage
        computed = {o for n in g.node for o in n.output}
        assert set(outputs) <= computed  # ... each output computed here, and read later
        read_later = {i for h in graphs[k + 1:] for i in (v.name for v in h.input)}
        assert set(outputs) <= read_later | {"output"}
        assert not any(name in given for name in outputs)  # a value leaves one stage only
        given.update((name, k) for name in outputs)
        assert not casts & set(inputs)  # fp16 weights' Casts stay with the stage that uses them
        if k:
            first = next(n for n in g.node if n.op_type != "Cast")  # (Casts: the fp16 weights')
            assert first.op_type in CUT_BEFORE  # never between a convolution and its activation
    assert [o.name for o in graphs[-1].output] == ["output"]
    assert [i.name for i in graphs[0].input] == ["input"]
    assert all(any(n.op_type in CUT_BEFORE for n in g.node) for g in graphs)  # no stage without work


def test_the_stage_count_follows_the_work(web_graph):
    """Without a count, a model is cut into about ``stage_macs`` (weighted) multiply-adds per stage at 256²
    (at least MIN_STAGES): a model with more work gets more stages, each computing its part."""
    assert stage_count(0) == stage_count(1e6) == MIN_STAGES
    assert stage_count(2e9, 200e6) == 10 and stage_count(8e9, 200e6) == 40
    graph = onnx.load_from_string(web_graph)
    plain, weighted = _macs(graph, 256), _macs(graph, 256, weighted=True)
    assert all(w >= m for m, w in zip(plain, weighted)) and weighted[plain.index(next(filter(None, plain)))] \
        >= 3 * next(filter(None, plain))  # the first convolution (over RGB: 48 per output) runs slowest
    total = sum(weighted)
    assert len(split_stages(web_graph, stage_macs=total * 10)) == MIN_STAGES  # small: the fewest
    many = split_stages(web_graph, stage_macs=total / 8)
    assert len(many) == 8  # as many as the work asks
    finest = split_stages(web_graph, 100)
    assert len(finest) < 100  # no more than there are convolutions to cut before,
    assert all(any(n.op_type in CUT_BEFORE for n in onnx.load_from_string(p).graph.node) for p in finest)  # each with one
    x = np.random.default_rng(1).uniform(-1, 1, (1, 3, 128, 128)).astype(np.float32)
    assert np.array_equal(staged(many, x), run_onnx(ort_session(web_graph, threads=1), x))
    assert np.array_equal(run_onnx(ort_session(join_stages(many), threads=1), x), staged(many, x))


def test_a_graph_without_convolutions_stays_whole():
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, "h", "w"])
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3, "h", "w"])
    graph = helper.make_graph([helper.make_node("Tanh", ["input"], ["output"])], "tanh", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]).SerializeToString()
    assert split_stages(model, 4) == [model]
