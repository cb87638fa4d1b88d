"""The decode-once cache holds what the files decode to, is rebuilt when they change, and the
device-side jitter computes what the CPU jitter computes for the same draw."""
import os

import numpy as np
import pytest
import torch
from PIL import Image

from pix2pix.data import (EpochBatchSampler, Jitter, PairedDataset, apply_batch, apply_params, collate,
                          draw_params, load_pair, params_from_tensor, scan_pairs)
from pix2pix.data.cache import build_cache, cache_folder, open_cache, read_index, stale_reason
from pix2pix.data.quantize import CacheUnsupported, from_uint8
from pix2pix.util.ranges import to_tensor
from conftest import cut_pairs, write_combined, write_folders

JITTERS = [Jitter("resize_crop", 64, 72, True), Jitter("crop", 48, 64, True),
           Jitter("resize", 48, 48, True), Jitter("none", 64, 64, True)]


@pytest.fixture(params=["combined", "folders"])
def dataset(request, tmp_path, world):
    """Five 64 px pairs: A|B PNGs, or A/ PNGs with B/ JPEGs."""
    pairs = cut_pairs(world, 5, 64, seed=4)
    (write_combined if request.param == "combined" else write_folders)(tmp_path / "d", "train", pairs)
    return tmp_path / "d"


def test_cache_equals_decoded_files(dataset, tmp_path):
    pairs = scan_pairs(dataset, "train")
    cache = build_cache(pairs, tmp_path / "cache")
    assert len(cache) == len(pairs)
    for i, pair in enumerate(pairs):
        a, b = load_pair(pair)
        ca, cb = cache.load(i)
        assert ca.dtype == np.uint8 and ca.shape == a.shape and cb.shape == b.shape
        # Bit for bit what read_image gives (the float path of training), not merely close.
        assert np.array_equal(from_uint8(ca), a) and np.array_equal(from_uint8(cb), b)


def test_dataset_items_with_cache_are_identical(dataset, tmp_path):
    pairs = scan_pairs(dataset, "train")
    cache = build_cache(pairs, tmp_path / "cache")
    jitter = Jitter("resize_crop", 48, 56, True)
    plain = PairedDataset(pairs, jitter=jitter, seed=3)
    cached = PairedDataset(pairs, jitter=jitter, seed=3, cache=cache)
    for batch in EpochBatchSampler(len(pairs), 2, seed=3, epoch=1):
        for key in batch:
            x, y = plain[key], cached[key]
            assert torch.equal(x["input"], y["input"]) and torch.equal(x["target"], y["target"])


def test_stale_cache_is_rebuilt(dataset, tmp_path, world):
    pairs = scan_pairs(dataset, "train")
    folder = tmp_path / "cache"
    open_cache(pairs, folder)
    assert stale_reason(read_index(folder), pairs) is None
    # Replace one file's pixels (new content, new size and mtime): the cache must follow.
    changed = pairs[2].a
    new_a, new_b = cut_pairs(world, 1, 64, seed=99)[0]
    Image.fromarray(np.concatenate([new_a, new_b], axis=1) if pairs[2].b is None else new_a).save(changed)
    st = changed.stat()
    os.utime(changed, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert "changed" in stale_reason(read_index(folder), pairs)
    cache = open_cache(pairs, folder)
    a, _ = load_pair(pairs[2])
    assert np.array_equal(from_uint8(cache.load(2)[0]), a)
    assert np.array_equal(cache.load(2)[0], new_a)
    assert stale_reason(read_index(folder), pairs) is None


def test_content_hash_sees_same_size_and_mtime(dataset, tmp_path):
    pairs = scan_pairs(dataset, "train")
    folder = tmp_path / "cache"
    open_cache(pairs, folder, content_hash=True)
    path = pairs[0].a
    st = path.stat()
    data = bytearray(path.read_bytes())
    data[-20] ^= 0xFF  # same length; then the old modification time is put back
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    index = read_index(folder)
    assert stale_reason(index, pairs, content_hash=False) is not None  # the index has hashes: used
    index.pop("content_hash")
    index["sources"] = [s[:3] for s in index["sources"]]
    assert stale_reason(index, pairs, content_hash=False) is None  # size + mtime alone cannot see it


def test_added_pair_makes_cache_stale(dataset, tmp_path, world):
    pairs = scan_pairs(dataset, "train")
    folder = tmp_path / "cache"
    open_cache(pairs, folder)
    if pairs[0].b is None:
        write_combined(dataset, "train", cut_pairs(world, 1, 64, seed=7), prefix="q")
    else:
        Image.fromarray(cut_pairs(world, 1, 64)[0][0]).save(dataset / "train" / "A" / "zz.png")
        Image.fromarray(cut_pairs(world, 1, 64)[0][1]).save(dataset / "train" / "B" / "zz.png")
    more = scan_pairs(dataset, "train")
    assert stale_reason(read_index(folder), more) == "the list of pairs changed"
    assert len(open_cache(more, folder)) == len(pairs) + 1


def test_16bit_images_are_refused(tmp_path, world):
    a, b = cut_pairs(world, 1, 32)[0]
    for side, img in (("A", a), ("B", b)):
        (tmp_path / "train" / side).mkdir(parents=True)
        Image.fromarray(img[:, :, 0].astype(np.uint16) * 257 + 1).save(tmp_path / "train" / side / "x.png")
    with pytest.raises(CacheUnsupported, match="x.png"):
        build_cache(scan_pairs(tmp_path, "train"), tmp_path / "cache")
    assert not (tmp_path / "cache").exists()


def test_cache_folder_depends_on_dataset_and_split(tmp_path):
    assert cache_folder(tmp_path / "a", "train") != cache_folder(tmp_path / "b", "train")
    assert cache_folder(tmp_path / "a", "train") != cache_folder(tmp_path / "a", "val")
    assert cache_folder(tmp_path / "a", "train") == cache_folder(tmp_path / "x" / ".." / "a", "train")


def _devices():
    yield "cpu"
    if torch.cuda.is_available():
        yield "cuda"


@pytest.mark.parametrize("device", list(_devices()))
@pytest.mark.parametrize("jitter", JITTERS, ids=lambda j: j.preprocess)
def test_device_jitter_equals_cpu_jitter(jitter, device):
    gen = torch.Generator().manual_seed(5)
    images = torch.randint(0, 256, (6, 3, 64, 64), dtype=torch.uint8, generator=gen)
    params = [draw_params(64, 64, jitter, gen) for _ in range(6)]
    assert len({p.flip for p in params}) == 2  # both branches are exercised
    cpu = torch.stack([apply_params(to_tensor(img.permute(1, 2, 0).numpy().astype(np.float32) / 255.0), p)
                       for img, p in zip(images, params)])
    dev = apply_batch(images.to(device), params)
    assert dev.dtype == torch.float32 and dev.shape == cpu.shape
    if device == "cpu":
        assert torch.equal(dev, cpu)
    else:  # a GPU's resampling kernel rounds its own way
        torch.testing.assert_close(dev.cpu(), cpu, atol=1e-5, rtol=0)


def test_raw_items_jittered_on_device_equal_cpu_items(dataset, tmp_path):
    """The loader path end to end: uint8 items collated, then apply_batch, against today's items."""
    pairs = scan_pairs(dataset, "train")
    jitter = Jitter("resize_crop", 48, 56, True)
    plain = PairedDataset(pairs, jitter=jitter, seed=1)
    raw = PairedDataset(pairs, jitter=jitter, seed=1, raw=True,
                        cache=build_cache(pairs, tmp_path / "cache"))
    keys = next(iter(EpochBatchSampler(len(pairs), 4, seed=1, epoch=0)))
    batch = collate([raw[k] for k in keys])
    assert batch["input"].dtype == torch.uint8
    params = [params_from_tensor(p) for p in batch["params"]]
    want = torch.stack([plain[k]["input"] for k in keys])
    assert torch.equal(apply_batch(batch["input"], params), want)
    want = torch.stack([plain[k]["target"] for k in keys])
    assert torch.equal(apply_batch(batch["target"], params), want)


def test_raw_items_of_different_sizes_collate_as_lists(tmp_path, world):
    (tmp_path / "train").mkdir()
    for i, size in enumerate((64, 80)):
        a, b = cut_pairs(world, 1, size, seed=i)[0]
        Image.fromarray(np.concatenate([a, b], axis=1)).save(tmp_path / "train" / f"p{i}.png")
    pairs = scan_pairs(tmp_path, "train")
    jitter = Jitter("resize_crop", 48, 56, True)
    plain, raw = PairedDataset(pairs, jitter=jitter), PairedDataset(pairs, jitter=jitter, raw=True)
    batch = collate([raw[0], raw[1]])
    assert isinstance(batch["input"], list)
    out = apply_batch(batch["input"], [params_from_tensor(p) for p in batch["params"]])
    assert torch.equal(out, torch.stack([plain[0]["input"], plain[1]["input"]]))


def test_content_hash_keeps_a_touched_but_unchanged_file(dataset, tmp_path):
    pairs = scan_pairs(dataset, "train")
    folder = tmp_path / "cache"
    open_cache(pairs, folder, content_hash=True)
    st = pairs[1].a.stat()
    os.utime(pairs[1].a, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert stale_reason(read_index(folder), pairs, content_hash=True) is None
    assert stale_reason(read_index(folder), pairs) is None  # the index's hashes are used anyway


def test_data_cache_command_builds_checks_and_sees_changes(tiny_dataset, tmp_path, monkeypatch, capsys):
    from pix2pix.cli import main

    monkeypatch.setenv("PIX2PIX_CACHE", str(tmp_path / "c"))
    assert main(["data", "cache", str(tiny_dataset), "--check"]) == 1
    assert "stale (no cache yet)" in capsys.readouterr().out
    assert main(["data", "cache", str(tiny_dataset)]) == 0
    out = capsys.readouterr().out
    assert "train: 4 pairs" in out and "built" in out and str(tmp_path / "c") in out
    assert main(["data", "cache", str(tiny_dataset), "--check"]) == 0
    path = scan_pairs(tiny_dataset, "train")[3].a
    path.write_bytes(path.read_bytes() + b"\0")  # one byte longer: stale
    assert main(["data", "cache", str(tiny_dataset), "--check"]) == 1
    assert path.name in capsys.readouterr().out
