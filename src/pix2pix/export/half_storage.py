"""Float16 storage for an exported page's weights, float32 in its ONNX Runtime session.

A page's model downloads at half its float32 size: each big float32 initializer travels as float16
in a blob beside the ONNX file, which holds the tensor as external data (``location`` WEIGHTS, the
offset and length of its float32 bytes). The page's worker widens the blob to float32 and mounts it
(``externalData`` of ONNX Runtime Web's session options), so the session is created from plain
float32 initializers.

Why not float16 initializers behind Casts to float32 (the earlier form, :func:`fp16_behind_casts`
in the tests): ONNX Runtime Web folds those Casts at load, but the session then ran every op, Tanh
and Concat included, about twice as slow over two WASM threads as the same values stored as float32
(docs/benchmarks.md, 2026-12-06 "fp16 weights in the page"). The values are the same either way:
the float32 weights rounded to float16.
"""
from __future__ import annotations

import numpy as np

WEIGHTS = "weights.bin"  # the external data's location; worker.js mounts the widened blob as it
# A stage's blob as the whole-model graph names it (web.WHOLE): PART_WEIGHTS.format(k) for stage k;
# worker.js mounts stage k's widened blob under this name too.
PART_WEIGHTS = "weights{}.bin"
MIN_VALUES = 16  # smaller tensors (scalars, shapes) stay inside the ONNX file as they are


def _big_float(tensor) -> bool:
    from onnx import TensorProto

    return tensor.data_type == TensorProto.FLOAT and int(np.prod(tensor.dims)) >= MIN_VALUES \
        and tensor.data_location != TensorProto.EXTERNAL


def pack(model_bytes: bytes) -> tuple[bytes, bytes]:
    """A float32 ONNX model -> (the model with its big float32 initializers as external data in
    WEIGHTS, their values as little-endian float16 in initializer order).

    Offsets and lengths in the model count float32 bytes: the blob widened is WEIGHTS itself."""
    import onnx
    from onnx import TensorProto, numpy_helper

    model = onnx.load_from_string(model_bytes)
    halves, values = [], 0
    for tensor in model.graph.initializer:
        if not _big_float(tensor):
            continue
        half = numpy_helper.to_array(tensor).astype("<f2")
        halves.append(half.tobytes())
        tensor.ClearField("raw_data")
        tensor.ClearField("float_data")
        tensor.data_location = TensorProto.EXTERNAL
        del tensor.external_data[:]
        for key, value in (("location", WEIGHTS), ("offset", 4 * values), ("length", 4 * half.size)):
            entry = tensor.external_data.add()
            entry.key, entry.value = key, str(value)
        values += half.size
    return model.SerializeToString(), b"".join(halves)


def relocated(model_bytes: bytes, location: str) -> bytes:
    """:func:`pack`'s model with its external data named ``location`` instead of WEIGHTS."""
    import onnx
    from onnx import TensorProto

    model = onnx.load_from_string(model_bytes)
    for tensor in model.graph.initializer:
        if tensor.data_location == TensorProto.EXTERNAL:
            for entry in tensor.external_data:
                if entry.key == "location":
                    entry.value = location
    return model.SerializeToString()


def unpack(model_bytes: bytes, half: bytes | dict[str, bytes]) -> bytes:
    """(:func:`pack`'s model, its float16 blob) -> the float32 ONNX model whole, as the page's
    session holds it (the weights rounded to float16). ``half`` may also map each external data
    location to its blob (a graph over several, as web.WHOLE). Raises ValueError on a blob that
    does not fit."""
    import onnx
    from onnx import TensorProto

    model = onnx.load_from_string(model_bytes)
    blobs = half if isinstance(half, dict) else {WEIGHTS: half}
    widened = {k: np.frombuffer(v, "<f2").astype("<f4").tobytes() for k, v in blobs.items()}
    for tensor in model.graph.initializer:
        if tensor.data_location != TensorProto.EXTERNAL:
            continue
        info = {e.key: e.value for e in tensor.external_data}
        data = widened.get(info.get("location"))
        if data is None:
            raise ValueError(f"initializer {tensor.name!r} is external data in {info.get('location')!r}, "
                             f"not in this page's {', '.join(widened)}; re-export the page")
        start, length = int(info.get("offset", 0)), int(info["length"])
        if start + length > len(data) or length != 4 * int(np.prod(tensor.dims)):
            raise ValueError(f"the float16 weights do not hold initializer {tensor.name!r} "
                             f"({length} bytes at {start}, of {len(data)}); re-export the page")
        tensor.raw_data = data[start:start + length]
        del tensor.external_data[:]
        tensor.data_location = TensorProto.DEFAULT
    return model.SerializeToString()


def rounded(model_bytes: bytes) -> bytes:
    """The float32 model with its big initializers rounded to float16: what a page computes with."""
    return unpack(*pack(model_bytes))


__all__ = ["pack", "unpack", "relocated", "rounded", "WEIGHTS", "PART_WEIGHTS", "MIN_VALUES"]
