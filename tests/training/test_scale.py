"""Scaling paths: 2-process DDP (gloo) against 1 process, synced batch norm, sharding, mixed
precision, channels_last, the fused D pass, torch.compile wiring, resume with all of them on."""
import json
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from pix2pix.config import DataConfig, ModelConfig, TrainConfig
from pix2pix.data import EpochBatchSampler
from pix2pix.models import build_discriminator, build_generator
from pix2pix.training import StepConfig, train, train_step
from pix2pix.training.sampler import RunBatchSampler

TINY = dict(generator="unet_128", base_channels=8, d_base_channels=8)


# Small models gain nothing from 2 threads, and on a busy machine OpenMP barriers make 2 threads
# 3-30x slower than 1 (fixture in tests/conftest.py).
pytestmark = pytest.mark.usefixtures("one_thread")


def cfg_for(root, out, model: ModelConfig, **kw) -> TrainConfig:
    base = dict(model=model, data=DataConfig(root=str(root), image_size=128), out=str(out),
                batch_size=2, epochs=2, decay_epochs=2, log_every=1, sample_every=100,
                checkpoint_every=100, seed=3)
    base.update(kw)
    return TrainConfig(**base)


def latest(run_dir):
    path = run_dir / json.loads((run_dir / "latest.json").read_text())["path"]
    return (load_file(str(path / "model" / "generator.safetensors")),
            load_file(str(path / "discriminator.safetensors")), path)


def norm_cancelled_biases(module: nn.Module, prefix: str = "") -> set[str]:
    """Conv biases followed by instance norm: mathematically zero gradient, so Adam moves them by
    float noise alone (g / (|g| + eps)). They cannot change any output and are left out."""
    names = set()
    children = list(module.named_children())
    for (name, child), (_, nxt) in zip(children, children[1:]):
        if isinstance(child, nn.Conv2d | nn.ConvTranspose2d) and isinstance(nxt, nn.InstanceNorm2d):
            names.add(f"{prefix}{name}.bias")
    for name, child in children:
        names |= norm_cancelled_biases(child, f"{prefix}{name}.")
    return names


@pytest.mark.parametrize("norm,flags,extra", [
    ("instance", [], {}), ("batch", ["--sync-batchnorm"], {}),
    # R1 (in the default recipe): its gradient of a gradient through the DDP-wrapped D, lazy every
    # 3rd step so that both kinds of D step (fused without R1, then with it) run through DDP.
    ("instance", ["--r1", "0.1", "--r1-every", "3"], {"r1_weight": 0.1, "r1_every": 3})])
def test_two_processes_equal_one_process_with_double_batch(tiny_dataset, tmp_path, norm, flags, extra):
    """2 gloo processes x batch 1 == 1 process x batch 2 after K steps: the same items reach the
    same global batch, gradients are averaged, (synced) batch statistics cover both halves."""
    k = 3
    two = tmp_path / "two"
    cmd = [sys.executable, "-m", "pix2pix", "train", "--data", str(tiny_dataset), "--out", str(two),
           "--arch", "unet_128", "--base-channels", "8", "--set", "model.d_base_channels=8",
           "--image-size", "128", "--batch-size", "1", "--num-processes", "2", "--norm", norm,
           "--dropout", "0", "--max-steps", str(k), "--log-every", "1", "--seed", "3",
           "--device", "cpu", "--no-progress", "--tensorboard", "off", "--recipe", "paper", *flags]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    model = ModelConfig(norm=norm, dropout=0.0, **TINY)
    # The paper recipe on both sides (the CLI's default recipe is another), in fp32.
    one = train(cfg_for(tiny_dataset, tmp_path / "one", model, max_steps=k, device="cpu",
                        tensorboard="off", precision="fp32", **extra), progress=False)

    lines2 = [json.loads(x) for x in (two / "metrics.jsonl").read_text().splitlines()]
    lines1 = [json.loads(x) for x in (one / "metrics.jsonl").read_text().splitlines()]
    # Two processes really ran (the process group had 2 members) and only rank 0 wrote.
    assert [x["step"] for x in lines2] == list(range(1, k + 1))
    assert {x["world_size"] for x in lines2} == {2}
    assert proc.stdout.count('"generator": "unet_128"') == 1  # the config printed once
    if extra:  # R1 first measured on step 3
        assert ["loss/d_r1" in x for x in lines1] == ["loss/d_r1" in x for x in lines2] == [False, False, True]
    for a, b in zip(lines1, lines2):  # losses averaged over processes = losses of the batch of 2
        for key in ("loss/g_l1", "loss/g_gan", "loss/d_real", "loss/d_fake", *(["loss/d_r1"] if "loss/d_r1" in a else [])):
            assert a[key] == pytest.approx(b[key], rel=1e-6, abs=1e-5), (a["step"], key)

    (g1, d1, _), (g2, d2, _) = latest(one), latest(two)
    skip = norm_cancelled_biases(build_generator(model)) | norm_cancelled_biases(build_discriminator(model))
    moved = max((g1[n] - build_generator(model).state_dict()[n]).abs().max() for n in g1 if "weight" in n)
    for name, (x, y) in [(n, (g1[n], g2[n])) for n in g1 if n not in skip] + \
                        [(n, (d1[n], d2[n])) for n in d1 if n not in skip]:
        diff = (x.float() - y.float()).abs()
        # Float tolerance: a few elements whose gradient is near zero may take Adam's +lr or -lr
        # step in each run (up to 2 * lr * k apart, seen at 4e-4 on busy machines); a wrong shard
        # or unsynced statistics move whole tensors, which the fraction check below catches.
        assert diff.max() < 2 * 2e-4 * k, name
        assert (diff > 1e-5).float().mean() < 1e-3, name
    assert moved > 1e-4  # and training did move the weights
    # The outputs of the two generators agree.
    from pix2pix.inference.translator import Translator

    x = torch.rand(2, 3, 128, 128) * 2 - 1
    # In one mode: the CLI's paper run tests with each image's statistics, the API's run with the running ones.
    out1 = Translator.from_pretrained(one, device="cpu", batch_stats=False).translate_tensor(x)
    out2 = Translator.from_pretrained(two, device="cpu", batch_stats=False).translate_tensor(x)
    assert (out1 - out2).abs().max() < 1e-3


def test_run_sampler_shards_each_global_batch():
    n, b, seed = 10, 2, 5
    one = RunBatchSampler(n, b * 2, seed)
    r0, r1 = RunBatchSampler(n, b, seed, rank=0, world=2), RunBatchSampler(n, b, seed, rank=1, world=2)
    it1, it0, itr1 = iter(one), iter(r0), iter(r1)
    for _ in range(7):  # crosses epoch boundaries (2 steps per epoch)
        assert next(it1) == next(it0) + next(itr1)
    # Single process: the same batches as the per-epoch sampler of the core loop, and resuming at
    # step 5 continues the same sequence.
    seq = [b for e in range(3) for b in EpochBatchSampler(n, 3, seed, e)]
    it = iter(RunBatchSampler(n, 3, seed))
    assert [next(it) for _ in range(9)] == seq
    it = iter(RunBatchSampler(n, 3, seed, start_step=5))
    assert [next(it) for _ in range(4)] == seq[5:]
    with pytest.raises(ValueError, match="batch_size 4 x 3 processes = 12 is larger than the 10"):
        RunBatchSampler(n, 4, seed, rank=0, world=3)


def _models(norm="batch", seed=0):
    torch.manual_seed(seed)
    cfg = ModelConfig(norm=norm, dropout=0.0, **TINY)
    g, d = build_generator(cfg), build_discriminator(cfg)
    return g, d, torch.optim.Adam(g.parameters(), 2e-4, betas=(0.5, 0.999)), \
        torch.optim.Adam(d.parameters(), 2e-4, betas=(0.5, 0.999))


def _losses(tiny_batch, steps=3, channels_last=False, amp=None, norm="batch", fuse_d=False):
    g, d, og, od = _models(norm)
    a, b = tiny_batch
    if channels_last:
        g, d = g.to(memory_format=torch.channels_last), d.to(memory_format=torch.channels_last)
        a, b = a.contiguous(memory_format=torch.channels_last), b.contiguous(memory_format=torch.channels_last)
    cfg = StepConfig(amp_dtype=amp, fuse_d=fuse_d)
    out = [{k: float(v) for k, v in train_step(g, d, og, od, a, b, cfg).items()} for _ in range(steps)]
    return out, g


@pytest.fixture
def tiny_batch():
    torch.manual_seed(1)
    a = torch.rand(2, 3, 128, 128) * 2 - 1
    return a, (a.flip(-1) * 0.8).clamp(-1, 1)


def test_channels_last_bf16_and_fused_d_match_the_plain_step(tiny_batch):
    ref, g_ref = _losses(tiny_batch)
    cl, _ = _losses(tiny_batch, channels_last=True)
    bf, _ = _losses(tiny_batch, amp=torch.bfloat16)
    for r, c, f in zip(ref, cl, bf):
        for k in r:
            assert c[k] == pytest.approx(r[k], abs=1e-4), k      # same maths, another layout
            assert f[k] == pytest.approx(r[k], abs=3e-2), k      # bf16: ~3 significant digits
    # Without batch norm one D pass over [real; fake] is the same as two passes.
    two, _ = _losses(tiny_batch, norm="instance")
    one, _ = _losses(tiny_batch, norm="instance", fuse_d=True)
    for r, f in zip(two, one):
        for k in r:
            assert f[k] == pytest.approx(r[k], abs=1e-5), k


def test_resume_is_exact_with_fp16_scaler_ema_and_channels_last(tiny_dataset, tmp_path, monkeypatch):
    """The resume guarantee of the core loop holds with the speed paths and the EMA on."""
    import pix2pix.util.precision as precision

    # This checks the loss scaler's resume, not speed: let fp16 through the CPU check (which
    # refuses it on CPUs without AVX512-FP16, as this one; tested in tests/test_errors.py).
    real = precision.cpu_flags()
    monkeypatch.setattr(precision, "cpu_flags", lambda: real | {"avx512_fp16"})
    model = ModelConfig(**TINY)
    kw = dict(precision="fp16", ema=0.9, channels_last=True, device="cpu", tensorboard="off")
    # fp16 starts at a loss scale of 2^16 and halves it on each overflow (skipping that step):
    # on this model the first 5 steps overflow, so 7 steps are needed to see updates.
    full = train(cfg_for(tiny_dataset, tmp_path / "full", model, max_steps=7, **kw), progress=False)
    half = train(cfg_for(tiny_dataset, tmp_path / "half", model, max_steps=4, **kw), progress=False)
    train(cfg_for(tiny_dataset, tmp_path / "half", model, max_steps=7, **kw), resume=True, progress=False)
    (g1, d1, p1), (g2, d2, p2) = latest(full), latest(half)
    for k in g1:
        assert torch.equal(g1[k], g2[k]), k
    raw1, raw2 = load_file(str(p1 / "generator_train.safetensors")), load_file(str(p2 / "generator_train.safetensors"))
    for k in raw1:
        assert torch.equal(raw1[k], raw2[k]), k
    # model/ holds the average, which differs from the trained weights beside it.
    assert any(not torch.equal(g1[k], raw1[k]) for k in g1)
    torch.manual_seed(3)
    init = build_generator(model).state_dict()
    assert any(not torch.equal(raw1[k], init[k]) for k in raw1)  # some steps were applied
    state = torch.load(p2 / "state.pt", weights_only=True)
    assert state["scaler"]["scale"] < 2.0**16 and state["world_size"] == 1


def test_compile_option_compiles_the_training_modules(tiny_dataset, tmp_path, monkeypatch):
    """compile=default goes through torch.compile for G, D and the frozen D; checkpoints keep
    plain parameter names. (Inductor itself is timed in benchmarks/train_step.py.)"""
    calls = []
    real = torch.compile

    def spy(module, mode=None, **kw):
        calls.append((type(module).__name__, mode))
        return real(module, backend="eager")

    monkeypatch.setattr(torch, "compile", spy)
    run = train(cfg_for(tiny_dataset, tmp_path / "c", ModelConfig(**TINY), max_steps=2,
                        compile="default", device="cpu", tensorboard="off"), progress=False)
    assert calls == [("UNet", None), ("PatchGAN", None), ("PatchGAN", None)]
    g, d, _ = latest(run)
    assert not any("_orig_mod" in k for k in list(g) + list(d))
    torch._dynamo.reset()
