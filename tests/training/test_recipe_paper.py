"""`--recipe paper` is exactly the training the package did before any recipe option existed."""
import hashlib
import json

import pytest
import torch
from safetensors.torch import load_file

from pix2pix.checkpoint import read_info
from pix2pix.config import DataConfig, ModelConfig, TrainConfig
from pix2pix.training import train

# sha256 of the generator and discriminator weights after the run below, computed by the code
# before recipe options existed, one thread, per CPU kind: oneDNN picks kernels by CPU features, so
# another CPU kind rounds differently. Keys are cpu_key() of the machine that computed the digest.
# On a CPU kind not listed, only the float sums below pin the weights (to ~1e-5).
PAPER_DIGESTS = {
    # the team's AMD EPYC with AVX-512 + bf16, code at commit 09a4471 (key not recorded then)
    "epyc-avx512-bf16": "d78b5512c6da7ca8041c53add08031264d8afb440c382955ee6a66bc73c2417b",
    # AMD EPYC, AVX2 only (no AVX-512), code at commit 15cc9e8, 2026-12-05
    "44ffa5cdbd69ca13": "e54b346a08da0031d590937f383b73b2f4008817155ee2c4129a74fdc01efebb",
}
PAPER_SUMS = [11317.2896, 902.322]


def _run_weights(run_dir) -> dict[str, torch.Tensor]:
    path = json.loads((run_dir / "latest.json").read_text())["path"]
    g = load_file(str(run_dir / path / "model" / "generator.safetensors"))
    d = load_file(str(run_dir / path / "discriminator.safetensors"))
    return {**{f"g.{k}": v for k, v in g.items()}, **{f"d.{k}": v for k, v in d.items()}}


def cpu_key() -> str:
    """A short hash of the CPU's model name and instruction-set flags (Linux /proc/cpuinfo)."""
    try:
        info = open("/proc/cpuinfo").read().splitlines()
        model = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
        flags = sorted(next(line.split(":", 1)[1].split() for line in info if line.startswith("flags")))
    except (OSError, StopIteration):
        return "unknown"
    return hashlib.sha256((model + " " + " ".join(flags)).encode()).hexdigest()[:16]


def digest(tensors: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for k in sorted(tensors):
        h.update(k.encode())
        h.update(tensors[k].contiguous().numpy().tobytes())
    return h.hexdigest()


def sums(tensors: dict[str, torch.Tensor]) -> list[float]:
    g = sum(float(v.double().abs().sum()) for k, v in tensors.items() if k.startswith("g."))
    d = sum(float(v.double().abs().sum()) for k, v in tensors.items() if k.startswith("d."))
    return [round(g, 4), round(d, 4)]


def paper_cfg(root, out, cfg: TrainConfig | None = None) -> TrainConfig:
    """A short run with every recipe-relevant field at its default, in fp32 (as `--recipe paper`)."""
    cfg = cfg or TrainConfig()
    import dataclasses

    return dataclasses.replace(
        cfg, model=dataclasses.replace(cfg.model, generator="unet_128", base_channels=8,
                                       d_base_channels=8, test_statistics="batch"),
        data=dataclasses.replace(cfg.data, root=str(root), image_size=128), out=str(out),
        batch_size=2, epochs=1, decay_epochs=1, max_steps=4, log_every=2, sample_every=100,
        checkpoint_every=100, seed=3, device="cpu", precision="fp32")


@pytest.mark.usefixtures("one_thread")
def test_paper_recipe_reproduces_pre_recipe_weights(tiny_dataset, tmp_path):
    run = train(paper_cfg(tiny_dataset, tmp_path / "run"), progress=False)
    w = _run_weights(run)
    # The paper's test mode is saved with the model and changes nothing in training.
    assert read_info(run).model.test_statistics == "batch"
    assert sums(w) == pytest.approx(PAPER_SUMS, rel=1e-5)
    key = cpu_key()
    if key in PAPER_DIGESTS:
        assert digest(w) == PAPER_DIGESTS[key]
