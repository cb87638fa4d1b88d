"""An ONNX generator cut into a few consecutive stages, so that the page can drop a stale run.

Why: the in-browser studio keeps one translation in flight. When a stroke ends while the run for
its first edit is still going, the stroke's last edit used to wait for that stale run to finish
and then take a whole run of its own: up to two inferences from pen-up to output. ONNX Runtime Web
cannot stop a ``session.run`` half-way, but between two sessions the page's worker can: run stage
by stage, and between stages drop the run when a newer edit has arrived. The last edit then waits
at most for the stage in progress.

How many: by the work, about :data:`STAGE_MACS` multiply-adds each at 256² (at least
:data:`MIN_STAGES`), so a big model gets more stages and the stage in progress stays short; a cut
has its own cost (a ``session.run`` and the copies of the values crossing it out of and back into
WebAssembly memory), so they are not made finer than that.

Each stage is a model of its own: its inputs are the activations it reads that earlier stages
computed (the first stage: ``input``), its outputs those it computes that later stages read (the
last: ``output``); a value is never passed on through a stage that does not use it.
Cuts fall only before a (transposed) convolution, so no convolution is separated from its activation (which
ONNX Runtime fuses into it), and at points that split the multiply-adds into near-equal parts.
Constants (initializers, and values computed only from them, as the fp16 weights' Casts) are
never cut: each stage keeps the ones it uses. :func:`join_stages` gives the one model back.
"""
from __future__ import annotations

import numpy as np

STAGE_MACS = 200e6  # multiply-adds per stage at the page's size (256²): ~13 ms of WASM on 2 threads
MIN_STAGES = 4  # a small model's stages: each cut costs a session.run and its copies, ~0.5-2 ms
CUT_BEFORE = ("Conv", "ConvTranspose")


# WebAssembly convolution kernels run a convolution with a short reduction (C_in·kh·kw, as the
# first one's over RGB: 48) or few output channels (the last one's: 3, or 12 before a pixel
# shuffle) at a third to a half of their usual rate per multiply-add (measured per stage in
# Chromium for unet_128/32 at 256²): :func:`_macs` with ``weighted`` counts them as that much more work.
NARROW = (160, 24)


def _macs(model, size: int, weighted: bool = False) -> list[float]:
    """Per node, the multiply-adds of a (1, C, size, size) input (0 for all but Conv/ConvTranspose);
    ``weighted``: a convolution narrower than :data:`NARROW` counts as proportionally more."""
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
            slow = max(1.0, NARROW[0] / per_output) * max(1.0, NARROW[1] / y[1]) if weighted else 1.0
            out.append(float(np.prod(y)) * float(per_output) * slow)
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


def stage_count(macs: float, stage_macs: float = STAGE_MACS) -> int:
    """How many stages a model of ``macs`` multiply-adds (at the page's size) is cut into: about
    ``stage_macs`` each, so that the stage in progress stays a few milliseconds whatever the model."""
    return max(MIN_STAGES, round(macs / stage_macs))


def split_stages(model_bytes: bytes, stages: int | None = None, size: int = 256,
                 stage_macs: float = STAGE_MACS) -> list[bytes]:
    """``model_bytes`` (a pix2pix export: input ``input``, output ``output``, nodes in topological
    order) as consecutive models whose (weighted, :func:`_macs`) multiply-adds at ``size``² are near-equal: up to ``stages``
    of them, or (``stages`` None) as many as :func:`stage_count` gives for ``stage_macs`` each.
    A graph with no place to cut comes back as one stage.

    Each stage takes the values it reads that earlier stages computed, and gives the values it
    computes that later stages read: a value crosses once from the stage that makes it to each
    stage that reads it, never passed on through the stages between (a U-Net's skips would
    otherwise be copied out of and back into WebAssembly memory at every cut they span)."""
    import onnx
    import onnx.shape_inference
    from onnx.utils import Extractor

    model = onnx.load_from_string(model_bytes)
    nodes = list(model.graph.node)
    const = _constants(model)
    cost = _macs(model, size, weighted=True)
    total = sum(cost)
    if stages is None:
        stages = stage_count(total, stage_macs)
    if stages <= 1 or total <= 0:
        return [model_bytes]
    places, done = [], 0.0  # (node index, work before it) where a cut may fall
    for i, node in enumerate(nodes):
        if done > 0 and node.op_type in CUT_BEFORE and node.input[0] not in const:
            places.append((i, done))
        done += cost[i]
    stages = min(stages, len(places) + 1)
    if stages <= 1:
        return [model_bytes]
    cuts, p = [0], 0
    for j in range(1, stages):  # each cut at the place nearest its share, leaving places for the rest
        last = len(places) - (stages - 1 - j)
        p = min(range(p, last), key=lambda q: abs(places[q][1] - total * j / stages))
        cuts.append(places[p][0])
        p += 1
    cuts.append(len(nodes))
    spans = list(zip(cuts, cuts[1:]))
    made_in = {"input": -1}  # value -> the stage that computes it
    for k, (a, b) in enumerate(spans):
        for node in nodes[a:b]:
            made_in.update((o, k) for o in node.output if o and o not in const)
    inputs: list[list[str]] = [[] for _ in spans]
    outputs: list[list[str]] = [[] for _ in spans]
    for k, (a, b) in enumerate(spans):
        for node in nodes[a:b]:
            for name in node.input:
                if name and name not in const and made_in[name] != k and name not in inputs[k]:
                    inputs[k].append(name)
                    if made_in[name] >= 0 and name not in outputs[made_in[name]]:
                        outputs[made_in[name]].append(name)
    outputs[-1].append("output")
    extractor = Extractor(onnx.shape_inference.infer_shapes(model))  # it reads the cut values' types
    out = []
    for k in range(len(spans)):
        stage = extractor.extract_model(inputs[k], outputs[k])
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
