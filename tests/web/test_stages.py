"""export.stages: the page's model cut into consecutive stages computes what the whole model does,
cuts only before convolutions and never through constants, passes no value through a stage that
does not use it, is cut into as many stages as its work calls for, and joins back into the one model;
a big convolution is split into parts by its output channels first, so no stage has to hold it whole."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

from pix2pix.checkpoint import PretrainedInfo
from pix2pix.config import ModelConfig
from pix2pix.inference.inference_graph import for_inference
from pix2pix.inference.onnx import export_checked, ort_session, run_onnx
from pix2pix.export.stages import (ACTIVATIONS, CUT_BEFORE, MIN_PART, MIN_STAGES, NARROW, SPLIT_ABOVE, SPLIT_SHARE,
                                   _macs, join_stages, split_convs, split_stages, stage_count, stage_work)
from pix2pix.models import build_generator


def fp16_behind_casts(model_bytes: bytes) -> bytes:
    """The graph with its float32 weights stored as float16, each behind a Cast to float32: the form
    fp16 ONNX files often come in (and the page's before half_storage), which the cutter must keep
    with the stage that uses each weight."""
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load_from_string(model_bytes)
    graph = model.graph
    casts, kept = [], []
    for init in graph.initializer:
        if init.data_type == TensorProto.FLOAT and np.prod(init.dims) >= 16:  # leave small scalars be
            half = numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float16), init.name + "__fp16")
            kept.append(half)
            casts.append(helper.make_node("Cast", [half.name], [init.name], to=TensorProto.FLOAT,
                                          name=init.name + "__to_fp32"))
        else:
            kept.append(init)
    del graph.initializer[:]
    graph.initializer.extend(kept)
    nodes = casts + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    return model.SerializeToString()


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
    model = fp16_behind_casts(web_graph) if fp16 else web_graph
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


def convolutions(model: bytes) -> list:
    return [n for n in onnx.load_from_string(model).graph.node if n.op_type in CUT_BEFORE]


def big_conv_graph(width: int = 2 * MIN_PART) -> bytes:
    """RGB -> conv 32 + LeakyRelu -> conv ``width`` + Relu -> transposed conv ``width`` (read by a
    Relu and a Sigmoid, multiplied) -> conv 3 + Tanh: two big convolutions (one transposed, one
    whose output has two readers) beside small ones, as ONNX with random weights."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inits = []

    def conv(op, x, y, shape):
        w = rng.standard_normal(shape) / np.sqrt(np.prod(shape[1:]))
        b = rng.standard_normal(shape[1 if op == "ConvTranspose" else 0]) * 0.1
        inits.extend(numpy_helper.from_array(a.astype(np.float32), f"{y}.{n}") for a, n in ((w, "w"), (b, "b")))
        return helper.make_node(op, [x, f"{y}.w", f"{y}.b"], [y], name=y, pads=[1] * 4)

    act = helper.make_node
    nodes = [conv("Conv", "input", "c1", (32, 3, 3, 3)), act("LeakyRelu", ["c1"], ["a1"], alpha=0.2),
             conv("Conv", "a1", "c2", (width, 32, 3, 3)), act("Relu", ["c2"], ["a2"]),
             conv("ConvTranspose", "a2", "c3", (width, width, 3, 3)), act("Relu", ["c3"], ["a3"]),
             act("Sigmoid", ["c3"], ["g3"]), act("Mul", ["a3", "g3"], ["m3"]),
             conv("Conv", "m3", "c4", (3, width, 3, 3)), act("Tanh", ["c4"], ["output"])]
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, "h", "w"])
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3, "h", "w"])
    graph = helper.make_graph(nodes, "big", [x], [y], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


@pytest.mark.parametrize("fp16", [False, True])
def test_a_big_convolution_is_split_so_that_no_stage_holds_it_whole(fp16):
    model = big_conv_graph()
    model = fp16_behind_casts(model) if fp16 else model
    graph = onnx.load_from_string(model)
    work = _macs(graph, 256, weighted=True)
    biggest = max(work)
    whole = split_stages(model, 4, split_above=None)
    assert max(stage_work(whole)) >= biggest > sum(work) / 4  # before: the biggest convolution alone is the floor
    parts = split_stages(model, 4, split_above=SPLIT_SHARE)
    assert len(parts) == 4
    assert max(stage_work(parts)) < 0.8 * biggest  # after: below it, near the share
    assert max(stage_work(parts)) < 0.8 * max(stage_work(whole))
    x = np.random.default_rng(2).uniform(-1, 1, (1, 3, 48, 64)).astype(np.float32)
    want = run_onnx(ort_session(model, threads=1), x)
    np.testing.assert_allclose(staged(parts, x), want, atol=1e-6)
    joined = join_stages(parts)
    np.testing.assert_allclose(run_onnx(ort_session(joined, threads=1), x), want, atol=1e-6)
    onnx.checker.check_model(onnx.load_from_string(joined))
    j = onnx.load_from_string(joined)
    convs = [n for n in j.graph.node if n.op_type in CUT_BEFORE]
    assert {n.name.split("__")[0] for n in convs} == {"c1", "c2", "c3", "c4"}
    for big in ("c2", "c3"):
        assert sum(n.name.startswith(f"{big}__part") for n in convs) >= 2
    assert [n.name for n in convs if n.name in ("c1", "c4")] == ["c1", "c4"]  # the small one, the narrow last: whole
    readers = {o: [n for n in j.graph.node if o in n.input] for m in j.graph.node for o in m.output}
    for n in convs:
        if n.name.startswith("c2__part"):  # each part fused with its own Relu, then one Concat
            (act,) = readers[n.output[0]]
            assert act.op_type == "Relu" and [r.op_type for r in readers[act.output[0]]] == ["Concat"]
        if n.name.startswith("c3__part"):  # two readers of the whole: the parts go straight to the Concat
            assert [r.op_type for r in readers[n.output[0]]] == ["Concat"]
    concat = next(n for n in j.graph.node if n.op_type == "Concat" and n.output[0] == "a2")
    assert onnx.helper.get_attribute_value(concat.attribute[0]) == 1  # on the channel axis
    stored = {i.name: i for i in j.graph.initializer}
    if fp16:  # the parts' weights stay fp16 (the download does not grow), each behind its Cast
        casts = [n for n in j.graph.node if n.op_type == "Cast" and "__part" in n.output[0]]
        assert len(casts) >= 8 and all(stored[n.input[0]].data_type == onnx.TensorProto.FLOAT16 for n in casts)
        assert len(joined) < 1.01 * len(model)
    assert not any(name in stored for name in ("c2.w", "c2.w__fp16", "c3.w", "c3.w__fp16"))  # the whole weights gone


@pytest.mark.parametrize("fp16", [False, True])
def test_split_convolutions_compute_the_same(web_graph, fp16):
    """Every convolution of a real export split as far as it goes (Conv, ConvTranspose, sub-pixel
    decoder convolutions read by Slices): the same output, the parts' activations among ACTIVATIONS."""
    model = fp16_behind_casts(web_graph) if fp16 else web_graph
    split = split_convs(model, limit=1.0, min_part=NARROW[1])  # parts as narrow as they may be
    assert len(convolutions(split)) > len(convolutions(model))
    x = np.random.default_rng(3).uniform(-1, 1, (1, 3, 128, 128)).astype(np.float32)
    np.testing.assert_allclose(run_onnx(ort_session(split, threads=1), x), run_onnx(ort_session(model, threads=1), x),
                               atol=1e-6)
    g = onnx.load_from_string(split).graph
    acts = [n.op_type for n in g.node if n.input and n.input[0].endswith("__part0") and n.op_type != "Concat"]
    assert acts and set(acts) <= set(ACTIVATIONS)


def test_a_graph_with_nothing_to_split_is_unchanged(web_graph):
    assert split_convs(web_graph, limit=1e15) is web_graph  # nothing above the limit
    narrow = big_conv_graph(width=2 * MIN_PART - 8)  # no convolution with two parts' worth of output channels
    assert split_convs(narrow, limit=1.0) is narrow
    assert split_stages(narrow, 4, split_above=SPLIT_SHARE) == split_stages(narrow, 4, split_above=None)
    assert split_convs(fp16_behind_casts(web_graph), limit=1e15) == fp16_behind_casts(web_graph)
    assert split_stages(web_graph, 4, split_above=SPLIT_SHARE) == split_stages(web_graph, 4)  # nothing above half a share
    assert SPLIT_ABOVE is None and split_stages(fp16_behind_casts(web_graph), 4) == split_stages(fp16_behind_casts(web_graph), 4, split_above=None)  # off by default
