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
ONNX Runtime fuses into it), at the places that make the largest stage as small as it can be
(and among those, the stages most even).
Constants (initializers, and values computed only from them, as the fp16 weights' Casts) are
never cut: each stage keeps the ones it uses. :func:`join_stages` gives the one model back.

Big convolutions in parts: a stage holds at least one whole convolution, so a single big one
(the demo model's three ~300 M weighted multiply-add decoder convolutions, ~20 ms each in WASM)
used to set the floor of the stage in progress whatever the stage count. Before cutting, each
convolution with more than :data:`SPLIT_ABOVE` of a stage's share of the work is computed as a
few convolutions on the same input, each giving a slice of the output channels, each followed by
its own copy of the activation that read the whole (so ONNX Runtime still fuses each part with
it), joined by a Concat on the channel axis under the original name (:func:`split_convs`). The
function is the same (each output channel is the same sum; ONNX Runtime gives the same bits on
CPU), and the cuts may fall between the parts. For the demo model (unet_128/32, resize decoder)
the largest of its 9 stages goes from 303 to 241 M weighted multiply-adds. The cost is per frame:
each part builds the im2col of the whole input again and the Concat copies the output (+5-10 % of
native ONNX Runtime's CPU time for the demo model, without NCHWc as in WASM, under load), so parts
keep at least :data:`MIN_PART` output channels; grouped convolutions and narrow ones (the last,
into RGB or a pixel shuffle's 12) stay whole. It is **off** by default (:data:`SPLIT_ABOVE` None):
measured in Chromium for the demo model (2026-12-06), the wait for the stage in progress fell by
about 1 ms at 9 stages while the frame grew by 3-10 ms, and at 18 stages the shorter wait was
spent again on the longer frame; ``split_above=SPLIT_SHARE`` turns it on.
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
            if node.op_type == "Conv":
                per_output = np.prod(w[1:])
            else:  # (C_in, C_out, kh, kw) taps spread over stride² outputs: C_in*kh*kw/stride² each
                strides = next((list(a.ints) for a in node.attribute if a.name == "strides"), [1, 1])
                per_output = np.prod(w) / max(1, y[1]) / max(1, int(np.prod(strides)))
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


# Elementwise activations that ONNX Runtime fuses into the convolution before them (FusedConv):
# a split convolution's parts each get their own copy, so each part stays one fused kernel.
ACTIVATIONS = ("Relu", "LeakyRelu", "Clip", "Sigmoid", "Tanh", "HardSigmoid", "HardSwish", "Elu", "Selu",
               "Softplus")
# A convolution with more than this share of a stage's work is split by output channels (None: none
# is). Off by default: measured in the page it did not pay (docs/studio.md, docs/benchmarks.md).
SPLIT_ABOVE: float | None = None
# The share to try it with (benchmarks/browser.py --stages-ab, the tests).
SPLIT_SHARE = 0.5
# Output channels a part keeps at least: each part builds its own im2col of the whole input (a
# few multiply-adds' worth per element), so a narrow part pays more for it than its share saves.
MIN_PART = 64


def _storage(model):
    """A function giving, for a value's name, the (initializer, Cast node or None) that holds it:
    the initializer itself, or, for fp16 weights, the one a Cast reads; (None, None) for anything
    else (a computed value). The graph's tables are built once, not per lookup."""
    inits = {i.name: i for i in model.graph.initializer}
    casts = {n.output[0]: n for n in model.graph.node if n.op_type == "Cast" and len(n.output) == 1}

    def stored(name: str):
        if name in inits:
            return inits[name], None
        cast = casts.get(name)
        if cast is not None and cast.input[0] in inits:
            return inits[cast.input[0]], cast
        return None, None

    return stored


def _parts(channels: int, k: int) -> list[int]:
    """Bounds of ``k`` near-equal parts of ``channels``, at multiples of 4 where they divide
    (SIMD-width blocks of output channels for the kernels)."""
    q = 4 if channels % 4 == 0 and channels >= 4 * k else 1
    return sorted({0, channels, *(round(channels * j / k / q) * q for j in range(1, k))})


def split_convs(model_bytes: bytes, limit: float, size: int = 256, min_part: int = MIN_PART) -> bytes:
    """``model_bytes`` with each convolution whose weighted work (:func:`_macs` at ``size``²)
    exceeds ``limit`` computed as a few convolutions on the same input, each giving a slice of the
    output channels (its weight's and bias's slice), joined by one Concat on the channel axis under
    the original output's name: the same function, with places between the parts where a cut may
    fall. When the convolution's one reader is an elementwise activation (:data:`ACTIVATIONS`),
    each part gets its own copy and the Concat takes the activation's place, so that each part is
    still one fused convolution+activation. Parts keep at least ``min_part`` output channels (and
    at least ``NARROW[1]``: a narrower convolution runs slower per multiply-add, so splitting it
    would not shorten it); grouped convolutions, and weights that are not constants or that
    another node reads too, are left whole. ``model_bytes`` comes back unchanged when nothing is
    split."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load_from_string(model_bytes)
    graph = model.graph
    cost = _macs(model, size, weighted=True)
    nodes = list(graph.node)
    stored = _storage(model)
    readers: dict[str, list[int]] = {}
    for i, node in enumerate(nodes):
        for name in node.input:
            readers.setdefault(name, []).append(i)
    outputs = {o.name for o in graph.output}
    replace: dict[int, list] = {}  # node index -> the nodes in its place ([] to drop it)
    casts, new_inits, done_with = [], [], set()
    for i, (node, work) in enumerate(zip(nodes, cost)):
        if work <= limit or node.op_type not in CUT_BEFORE or len(node.input) < 2:
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        weight, weight_cast = stored(node.input[1])
        bias, bias_cast = stored(node.input[2]) if len(node.input) > 2 and node.input[2] else (None, None)
        if attrs.get("group", 1) != 1 or weight is None or (len(node.input) > 2 and node.input[2] and bias is None) \
                or "output_shape" in attrs or any(len(readers[name]) > 1 for name in node.input[1:] if name):
            continue  # grouped; weights not constants or shared with another node; an output shape to keep
        axis = 0 if node.op_type == "Conv" else 1  # Conv weights (C_out, C_in, kh, kw); ConvTranspose (C_in, C_out, ...)
        channels = weight.dims[axis]
        k = min(int(np.ceil(work / limit)), channels // max(min_part, NARROW[1]))
        if k < 2:
            continue
        y = node.output[0]
        at = readers.get(y, [])
        at = at[0] if len(at) == 1 and nodes[at[0]].op_type in ACTIVATIONS and nodes[at[0]].input[0] == y \
            and y not in outputs else None
        act = nodes[at] if at is not None else None
        final = act.output[0] if act is not None else y
        w, b = numpy_helper.to_array(weight), numpy_helper.to_array(bias) if bias is not None else None
        bounds = _parts(channels, k)
        group, pieces = [], []
        for j, (lo, hi) in enumerate(zip(bounds, bounds[1:])):
            inputs = [node.input[0]]
            for tensor, array, cast, ax in ((weight, w, weight_cast, axis), (bias, b, bias_cast, 0)):
                if tensor is None:
                    continue
                name = f"{(cast.output[0] if cast is not None else tensor.name)}__part{j}"
                part = np.take(array, np.arange(lo, hi), axis=ax)
                if cast is not None:  # fp16 storage, behind its own Cast as the whole weight was
                    new_inits.append(numpy_helper.from_array(part, name + "__stored"))
                    part_cast = helper.make_node("Cast", [name + "__stored"], [name], name=name + "__cast")
                    part_cast.attribute.extend(cast.attribute)
                    casts.append(part_cast)
                else:
                    new_inits.append(numpy_helper.from_array(part, name))
                inputs.append(name)
            part_y = f"{y}__part{j}"
            conv = helper.make_node(node.op_type, inputs, [part_y], name=f"{node.name or y}__part{j}")
            conv.attribute.extend(node.attribute)
            group.append(conv)
            if act is not None:
                copy = onnx.NodeProto()
                copy.CopyFrom(act)
                copy.name = f"{act.name or final}__part{j}"
                copy.input[0] = part_y
                copy.output[0] = f"{final}__part{j}"
                group.append(copy)
            pieces.append(group[-1].output[0])
        group.append(helper.make_node("Concat", pieces, [final], name=f"{final}__concat", axis=1))
        # In the activation's place: every value the group reads is made before it, and every
        # reader of the final value comes after it.
        replace[i] = [] if act is not None else group
        if act is not None:
            replace[at] = group
        done_with.update(t.name for t in (weight, bias) if t is not None)
        done_with.update(c.output[0] for c in (weight_cast, bias_cast) if c is not None)
    if not replace:
        return model_bytes
    nodes = casts + [n for i, node in enumerate(nodes) for n in replace.get(i, [node])]
    # The whole weights (and, for fp16, their Casts and stored halves) that only the split
    # convolutions read go.
    read = {name for n in nodes for name in n.input}
    dropped = [n for n in nodes if n.op_type == "Cast" and n.output[0] in done_with and n.output[0] not in read]
    nodes = [n for n in nodes if all(n is not d for d in dropped)]
    done_with.update(n.input[0] for n in dropped)
    read = {name for n in nodes for name in n.input}
    inits = [i for i in graph.initializer if i.name not in done_with or i.name in read] + new_inits
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.initializer[:]
    graph.initializer.extend(inits)
    made = {o for n in nodes for o in n.output}
    kept = [v for v in graph.value_info if v.name in made]
    del graph.value_info[:]
    graph.value_info.extend(kept)
    return model.SerializeToString()


def stage_count(macs: float, stage_macs: float = STAGE_MACS) -> int:
    """How many stages a model of ``macs`` multiply-adds (at the page's size) is cut into: about
    ``stage_macs`` each, so that the stage in progress stays a few milliseconds whatever the model."""
    return max(MIN_STAGES, round(macs / stage_macs))


def _balanced(ends: list[float], stages: int) -> list[int]:
    """Which ``stages - 1`` of the places (``ends[:-1]``: the work done before each, ascending;
    ``ends[-1]``: the whole work) to cut at: the largest stage as small as it can be (the wait for
    the stage in progress is at most that), and among those cuts the ones with the least sum of
    squared stage works (the expected wait of an edit arriving at a random moment)."""
    starts = [0.0] + ends  # unit u (between two places) is starts[u]..starts[u + 1]; its end: ends[u]
    n = len(ends)
    inf = float("inf")
    # top[j][i]: the least largest stage of units 0..i-1 in j stages
    top = [[inf] * (n + 1) for _ in range(stages + 1)]
    top[0][0] = 0.0
    for j in range(1, stages + 1):
        for i in range(j, n + 1):
            top[j][i] = min(max(top[j - 1][t], starts[i] - starts[t]) for t in range(j - 1, i))
    bound = top[stages][n] * (1 + 1e-9)
    squares = [[inf] * (n + 1) for _ in range(stages + 1)]
    back = [[0] * (n + 1) for _ in range(stages + 1)]
    squares[0][0] = 0.0
    for j in range(1, stages + 1):
        for i in range(j, n + 1):
            for t in range(j - 1, i):
                w = starts[i] - starts[t]
                if w <= bound and squares[j - 1][t] + w * w < squares[j][i]:
                    squares[j][i], back[j][i] = squares[j - 1][t] + w * w, t
    chosen, i = [], n
    for j in range(stages, 0, -1):
        i = back[j][i]
        chosen.append(i - 1)  # a stage starting at unit i begins at place i - 1
    return sorted(chosen)[1:]  # the first stage starts at node 0, not at a place


def split_stages(model_bytes: bytes, stages: int | None = None, size: int = 256,
                 stage_macs: float = STAGE_MACS, split_above: float | None = SPLIT_ABOVE) -> list[bytes]:
    """``model_bytes`` (a pix2pix export: input ``input``, output ``output``, nodes in topological
    order) as consecutive models whose (weighted, :func:`_macs`) multiply-adds at ``size``² are near-equal: up to ``stages``
    of them, or (``stages`` None) as many as :func:`stage_count` gives for ``stage_macs`` each.
    A graph with no place to cut comes back as one stage. First a convolution with more than
    ``split_above`` of a stage's share of the work is split into parts by its output channels
    (:func:`split_convs`; None: none is), so that no stage has to hold a whole big convolution.

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
    split = model_bytes if split_above is None else split_convs(model_bytes, split_above * total / stages, size)
    if split is not model_bytes:  # a big convolution in parts, with places to cut between them
        model_bytes, model = split, onnx.load_from_string(split)
        nodes, const = list(model.graph.node), _constants(model)
        cost = _macs(model, size, weighted=True)
        total = sum(cost)
    places, done = [], 0.0  # (node index, work before it) where a cut may fall
    for i, node in enumerate(nodes):
        if done > 0 and node.op_type in CUT_BEFORE and node.input[0] not in const:
            places.append((i, done))
        done += cost[i]
    stages = min(stages, len(places) + 1)
    if stages <= 1:
        return [model_bytes]
    chosen = _balanced([d for _, d in places] + [total], stages)
    cuts = [0] + [places[q][0] for q in chosen] + [len(nodes)]
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


def stage_work(parts: list[bytes], size: int = 256) -> list[float]:
    """Each of :func:`split_stages`' parts' weighted multiply-adds (:func:`_macs`) at ``size``²."""
    import onnx

    joined = onnx.load_from_string(join_stages(parts))
    work = dict(zip((n.output[0] for n in joined.graph.node), _macs(joined, size, weighted=True)))
    return [sum(work.get(n.output[0], 0.0) for n in onnx.load_from_string(p).graph.node) for p in parts]


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
