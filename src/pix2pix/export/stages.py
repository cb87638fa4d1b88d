"""An ONNX generator cut into a few consecutive stages, so that the page can drop a stale run.

Why: the in-browser studio keeps one translation in flight. When a stroke ends while the run for
its first edit is still going, the stroke's last edit used to wait for that stale run to finish
and then take a whole run of its own: up to two inferences from pen-up to output. ONNX Runtime Web
cannot stop a ``session.run`` half-way, but between two sessions the page's worker can: run stage
by stage, and between stages drop the run when a newer edit has arrived. The last edit then waits
at most for the stage in progress.

Each stage is a model of its own: its inputs are the activations that cross the cut before it
(the first stage: ``input``), its outputs those that cross the cut after it (the last: ``output``).
Cuts fall only before a (transposed) convolution, so no convolution is separated from its activation (which
ONNX Runtime fuses into it), and at points that split the multiply-adds into near-equal parts.
Constants (initializers, and values computed only from them, as the fp16 weights' Casts) are
never cut: each stage keeps the ones it uses. :func:`join_stages` gives the one model back.
"""
from __future__ import annotations

import numpy as np

STAGES = 4  # the web export's: at 256² the stage in progress is then ~1/4 of a run
CUT_BEFORE = ("Conv", "ConvTranspose")


def _macs(model, size: int) -> list[float]:
    """Per node, the multiply-adds of a (1, C, size, size) input (0 for all but Conv/ConvTranspose)."""
    import onnx
    from onnx import shape_inference

    m = onnx.ModelProto()
    m.CopyFrom(model)
    dims = m.graph.input[0].type.tensor_type.shape.dim
    for d, v in zip(dims, (1, None, size, size)):
        if v is not None:
            d.Clear()
            d.dim_value = v
    inferred = shape_inference.infer_shapes(m)
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
              for v in list(inferred.graph.value_info) + list(inferred.graph.output)}
    weights = {i.name: list(i.dims) for i in model.graph.initializer}
    # fp16 weights sit behind a Cast: the conv sees the Cast's output, of the same shape.
    for node in model.graph.node:
        if node.op_type == "Cast" and node.input[0] in weights:
            weights[node.output[0]] = weights[node.input[0]]
    out = []
    for node in model.graph.node:
        w, y = weights.get(node.input[1]) if len(node.input) > 1 else None, shapes.get(node.output[0])
        if node.op_type in ("Conv", "ConvTranspose") and w and y and all(y):
            per_output = np.prod(w[1:]) if node.op_type == "Conv" else np.prod(w) / max(1, y[1])
            out.append(float(np.prod(y)) * float(per_output))
        else:
            out.append(0.0)
    return out


def _constants(model) -> set[str]:
    """Names of initializers and of values computed only from them."""
    const = {i.name for i in model.graph.initializer}
    for node in model.graph.node:
        if all(not name or name in const for name in node.input):
            const.update(node.output)
    return const


def split_stages(model_bytes: bytes, stages: int = STAGES, size: int = 256) -> list[bytes]:
    """``model_bytes`` (a pix2pix export: input ``input``, output ``output``, nodes in topological
    order) as up to ``stages`` consecutive models whose multiply-adds at ``size``² are near-equal.
    A graph with no place to cut comes back as one stage."""
    import onnx
    import onnx.shape_inference
    from onnx.utils import Extractor

    model = onnx.load_from_string(model_bytes)
    nodes = list(model.graph.node)
    const = _constants(model)
    cost = _macs(model, size)
    total = sum(cost)
    if stages <= 1 or total <= 0:
        return [model_bytes]
    consumers_after = {}  # value -> index of its last consumer
    for i, node in enumerate(nodes):
        for name in node.input:
            consumers_after[name] = i
    produced_before: list[str] = []
    cuts, crossing = [], []
    done, target = 0.0, 1
    for i, node in enumerate(nodes):
        if target < stages and done >= total * target / stages and node.op_type in CUT_BEFORE \
                and node.input[0] not in const:
            live = [v for v in ["input", *produced_before] if v not in const and consumers_after.get(v, -1) >= i]
            cuts.append(i)
            crossing.append(live)
            target += 1
        done += cost[i]
        produced_before.extend(o for o in node.output if o)
    if not cuts:
        return [model_bytes]
    bounds = [["input"], *crossing, ["output"]]
    extractor = Extractor(onnx.shape_inference.infer_shapes(model))  # it reads the cut values' types
    out = []
    for k in range(len(bounds) - 1):
        stage = extractor.extract_model(bounds[k], bounds[k + 1])
        stage.ir_version = model.ir_version  # what the runtime reads, as the whole model's
        del stage.opset_import[:]
        stage.opset_import.extend(model.opset_import)
        out.append(stage.SerializeToString())
    return out


def join_stages(parts: list[bytes]) -> bytes:
    """The one model of :func:`split_stages`' parts (their nodes in order, their constants once)."""
    import onnx

    if len(parts) == 1:
        return parts[0]
    models = [onnx.load_from_string(p) for p in parts]
    whole = onnx.ModelProto()
    whole.CopyFrom(models[0])
    graph = whole.graph
    seen_nodes = {n.output[0] for n in graph.node}
    seen_init = {i.name for i in graph.initializer}
    for m in models[1:]:
        for node in m.graph.node:
            if node.output[0] not in seen_nodes:  # a constant's Cast kept by two stages
                graph.node.append(node)
                seen_nodes.add(node.output[0])
        for init in m.graph.initializer:
            if init.name not in seen_init:
                graph.initializer.append(init)
                seen_init.add(init.name)
    del graph.output[:]
    graph.output.extend(models[-1].graph.output)
    return whole.SerializeToString()
