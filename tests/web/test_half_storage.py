"""export.half_storage: a page's weights travel as float16 and come back as the float32 model with
those values, computing what the same float16 weights behind Casts compute; a blob that does not
fit is refused by the initializer's name; and an exported page stores its stages that way."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, numpy_helper

from pix2pix.checkpoint import PretrainedInfo
from pix2pix.config import ModelConfig
from pix2pix.export import half_storage
from pix2pix.inference.inference_graph import for_inference
from pix2pix.export.web import HALF, MODEL, WHOLE, model_entries
from pix2pix.inference.onnx import export_checked, ort_session, run_onnx
from pix2pix.models import build_generator

from .test_stages import fp16_behind_casts, staged


@pytest.fixture(scope="module")
def graph(tmp_path_factory) -> bytes:
    torch.manual_seed(0)
    cfg = ModelConfig(generator="unet_128", base_channels=8, upsample="resize")
    fast, _ = for_inference(build_generator(cfg).eval())
    path = tmp_path_factory.mktemp("half") / "model.onnx"
    return export_checked(fast, PretrainedInfo(model=cfg, image_size=128), path).path.read_bytes()


def big_floats(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    return {t.name: numpy_helper.to_array(t) for t in model.graph.initializer
            if t.data_type == TensorProto.FLOAT and np.prod(t.dims) >= half_storage.MIN_VALUES}


def test_pack_halves_the_weights_and_unpack_gives_them_back_rounded(graph):
    skeleton, half = half_storage.pack(graph)
    weights = big_floats(onnx.load_from_string(graph))
    values = sum(w.size for w in weights.values())
    assert values > 10_000 and len(half) == 2 * values  # every big weight, as float16
    assert len(skeleton) < 0.05 * len(graph)  # the ONNX file keeps the graph, not the weights
    externals = [t for t in onnx.load_from_string(skeleton).graph.initializer
                 if t.data_location == TensorProto.EXTERNAL]
    assert {t.name for t in externals} == set(weights)
    assert all({e.key: e.value for e in t.external_data}["location"] == half_storage.WEIGHTS for t in externals)
    back = onnx.load_from_string(half_storage.unpack(skeleton, half))
    assert not any(t.data_location == TensorProto.EXTERNAL for t in back.graph.initializer)
    got = big_floats(back)
    for name, w in weights.items():
        assert got[name].dtype == np.float32 and got[name].shape == w.shape
        np.testing.assert_array_equal(got[name], w.astype(np.float16).astype(np.float32))
    # The small tensors (shapes, scalars) are untouched.
    small = {t.name: t.SerializeToString() for t in onnx.load_from_string(graph).graph.initializer if t.name not in weights}
    assert small == {t.name: t.SerializeToString() for t in back.graph.initializer if t.name not in weights}


def test_the_rounded_model_computes_what_the_casts_form_computes(graph):
    x = np.random.default_rng(0).uniform(-1, 1, (1, 3, 128, 256)).astype(np.float32)
    rounded = run_onnx(ort_session(half_storage.rounded(graph), threads=1), x)
    casts = run_onnx(ort_session(fp16_behind_casts(graph), threads=1), x)
    full = run_onnx(ort_session(graph, threads=1), x)
    np.testing.assert_allclose(rounded, casts, atol=1e-6)
    assert 0 < np.abs(rounded - full).max() < 2e-2  # the float16 rounding shows, within the page's limit


def test_a_blob_that_does_not_fit_is_refused_by_name(graph):
    skeleton, half = half_storage.pack(graph)
    with pytest.raises(ValueError, match=r"do not hold initializer '.+'.*re-export"):
        half_storage.unpack(skeleton, half[: len(half) // 2])


def test_a_page_stores_each_stage_with_its_float16_weights(graph):
    entries = model_entries(graph, half=True)
    models = sorted(n for n in entries if n.startswith(f"{MODEL}#"))
    assert len(models) > 1 and set(entries) == set(models) | {n.replace(MODEL, HALF, 1) for n in models} | {WHOLE}
    parts = [half_storage.unpack(entries[n], entries[n.replace(MODEL, HALF, 1)]) for n in models]
    x = np.random.default_rng(1).uniform(-1, 1, (1, 3, 128, 128)).astype(np.float32)
    want = run_onnx(ort_session(half_storage.rounded(graph), threads=1), x)
    np.testing.assert_allclose(staged(parts, x), want, atol=1e-5)
    assert sum(map(len, entries.values())) < 0.55 * sum(map(len, model_entries(graph).values()))


def test_the_whole_graph_runs_the_stages_over_their_blobs(graph):
    entries = model_entries(graph, half=True)
    stages = sorted((n for n in entries if n.startswith(f"{MODEL}#")), key=lambda n: int(n.split("#")[1]))
    whole = onnx.load_from_string(entries[WHOLE])
    # No weight travels twice: the whole graph holds none, only references to the stages' blobs.
    assert len(entries[WHOLE]) < 0.05 * len(graph)
    locations = {e.value for t in whole.graph.initializer for e in t.external_data if e.key == "location"}
    assert locations == {half_storage.PART_WEIGHTS.format(k) for k in range(len(stages))}
    blobs = {half_storage.PART_WEIGHTS.format(k): entries[n.replace(MODEL, HALF, 1)] for k, n in enumerate(stages)}
    x = np.random.default_rng(2).uniform(-1, 1, (1, 3, 128, 256)).astype(np.float32)
    want = run_onnx(ort_session(half_storage.rounded(graph), threads=1), x)
    got = run_onnx(ort_session(half_storage.unpack(entries[WHOLE], blobs), threads=1), x)
    np.testing.assert_allclose(got, want, atol=1e-5)
    with pytest.raises(ValueError, match=r"is external data in 'weights1.bin'"):
        half_storage.unpack(entries[WHOLE], {k: v for k, v in blobs.items() if k != "weights1.bin"})

