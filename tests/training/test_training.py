import json

import pytest
import torch
from safetensors.torch import load_file

from pix2pix.config import DataConfig, ModelConfig, TrainConfig
from pix2pix.data import Jitter, PairedDataset, scan_pairs
from pix2pix.models import build_discriminator, build_generator
from pix2pix.training import StepConfig, train, train_step
from pix2pix.training.schedule import FittedSchedule, lr_factor

SMALL = ModelConfig(generator="unet_128", base_channels=8, d_base_channels=8)


def small_cfg(root, out, **kw) -> TrainConfig:
    base = dict(model=SMALL, data=DataConfig(root=str(root), image_size=128), out=str(out),
                batch_size=2, epochs=2, decay_epochs=2, log_every=1, sample_every=3,
                checkpoint_every=100, seed=3)
    base.update(kw)
    return TrainConfig(**base)


def weights(run_dir):
    path = json.loads((run_dir / "latest.json").read_text())["path"]
    return load_file(str(run_dir / path / "model" / "generator.safetensors")), \
        load_file(str(run_dir / path / "discriminator.safetensors"))


def test_lr_schedule_is_constant_then_linear_to_zero():
    f = [lr_factor(s, decay_start=100, decay_end=200) for s in (0, 99, 100, 150, 199, 200, 250)]
    assert f == [1.0, 1.0, 1.0, 0.5, 0.01, 0.0, 0.0]
    assert lr_factor(150, decay_start=100, decay_end=200, schedule="constant") == 1.0


def test_fitted_schedule_reaches_zero_at_the_expected_end_and_stays_continuous():
    # Step schedule: constant to 1000, zero at 2000; the run is expected to end at step 200.
    s = FittedSchedule(decay_start=1000, decay_end=2000, start_step=0)
    assert s.factor(0) == 1.0 and not s.done(0)
    s.refit(10, expected_last=200)  # 10 schedule steps done, 1990 left in 190 training steps
    assert s.position(10) == 10 and s.rate == pytest.approx(1990 / 190)
    assert s.factor(105) == pytest.approx(1.0, abs=0.01)  # about halfway: the decay starts
    assert s.factor(150) == pytest.approx(1 - (10 + 140 * 1990 / 190 - 1000) / 1000)  # ~0.52
    before = s.factor(150)
    s.refit(150, expected_last=300)  # the machine slowed down: same lr now, a slower decay after
    assert s.factor(150) == before
    assert s.factor(300) == 0.0 and s.done(300) and not s.done(299)
    assert 0 < s.factor(225) < before
    # Time to spare: the run follows the step schedule (rate 1), never slower.
    t = FittedSchedule(decay_start=100, decay_end=200, start_step=0)
    t.refit(5, expected_last=10_000)
    assert t.rate == 1.0 and t.factor(150) == lr_factor(150, decay_start=100, decay_end=200)


def test_fit_schedule_decays_to_zero_where_max_steps_ends_the_run(tiny_dataset, tmp_path):
    """With epochs planned far past max_steps, 'linear' never decays; 'fit' ends at lr 0, finished."""
    kw = dict(epochs=50, decay_epochs=50, max_steps=6)
    lin = train(small_cfg(tiny_dataset, tmp_path / "lin", **kw), progress=False)
    fit = train(small_cfg(tiny_dataset, tmp_path / "fit", lr_schedule="fit", **kw), progress=False)
    lrs = {name: [json.loads(l)["lr"] for l in (r.run_dir / "metrics.jsonl").read_text().splitlines()]
           for name, r in (("lin", lin), ("fit", fit))}
    assert lrs["lin"] == [2e-4] * 6
    assert len(lrs["fit"]) == 6 and lrs["fit"][0] == 2e-4
    assert lrs["fit"][-1] <= 2e-4 * 0.5 and all(a >= b for a, b in zip(lrs["fit"], lrs["fit"][1:]))
    assert fit.stopped == "finished" and fit.step == 6
    with pytest.raises(ValueError, match="lr_schedule"):
        small_cfg(tiny_dataset, tmp_path / "x", lr_schedule="cosine").validate()


def test_resume_equals_uninterrupted(tiny_dataset, tmp_path):
    """N steps + resume + N steps == 2N steps: weights bit-equal (dropout, jitter, Adam, lr decay)."""
    full = train(small_cfg(tiny_dataset, tmp_path / "full", max_steps=6), progress=False)
    half = train(small_cfg(tiny_dataset, tmp_path / "half", max_steps=3), progress=False)
    # The second leg crosses an epoch boundary (2 steps per epoch) and the lr decay start.
    train(small_cfg(tiny_dataset, tmp_path / "half", max_steps=6), resume=True, progress=False)
    (g1, d1), (g2, d2) = weights(full), weights(half)
    assert g1.keys() == g2.keys()
    for k in g1:
        assert torch.allclose(g1[k].float(), g2[k].float(), atol=1e-6, rtol=0), k
    for k in d1:
        assert torch.allclose(d1[k].float(), d2[k].float(), atol=1e-6, rtol=0), k
    # And the resumed run really did continue: it is not equal to the 3-step weights.
    lines = [json.loads(l) for l in (half / "metrics.jsonl").read_text().splitlines()]
    assert [l["step"] for l in lines] == [1, 2, 3, 4, 5, 6]


def test_run_outputs(tiny_dataset, tmp_path):
    run = train(small_cfg(tiny_dataset, tmp_path / "run", max_steps=4, lr=1e-3), progress=False)
    saved = json.loads((run / "config.json").read_text())
    assert saved["model"]["base_channels"] == 8 and saved["max_steps"] == 4
    lines = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()]
    assert {"step", "lr", "loss/g_l1", "loss/g_gan", "loss/d_real", "loss/d_fake"} <= lines[0].keys()
    samples = sorted((run / "samples").glob("*.png"))
    assert [p.name for p in samples] == ["step_00000003.png", "step_00000004.png"]
    from PIL import Image
    grid = Image.open(samples[0])
    assert grid.size == (3 * 128 + 4, 2 * 128 + 2)  # input | output | target, 2 val samples
    with pytest.raises(ValueError, match="already holds a training run"):
        train(small_cfg(tiny_dataset, tmp_path / "run", max_steps=4), progress=False)


@pytest.mark.usefixtures("one_thread")
def test_overfit_l1_falls(tiny_dataset):
    """Two images, no jitter: L1 must fall by a large factor in a bounded number of steps."""
    ds = PairedDataset(scan_pairs(tiny_dataset, "val"), jitter=Jitter("none", 128, 128, False))
    a = torch.stack([ds[i]["input"] for i in range(2)])
    b = torch.stack([ds[i]["target"] for i in range(2)])
    cfg = ModelConfig(generator="unet_128", base_channels=16, d_base_channels=16, dropout=0.0)
    torch.manual_seed(0)
    g, d = build_generator(cfg), build_discriminator(cfg)
    og = torch.optim.Adam(g.parameters(), 1e-3, betas=(0.5, 0.999))
    od = torch.optim.Adam(d.parameters(), 1e-3, betas=(0.5, 0.999))
    first = train_step(g, d, og, od, a, b, StepConfig())["loss/g_l1"].item()
    for _ in range(150):
        last = train_step(g, d, og, od, a, b, StepConfig())["loss/g_l1"].item()
    assert last < first / 4, (first, last)


def test_l1_only_ablation_skips_discriminator(tiny_dataset):
    ds = PairedDataset(scan_pairs(tiny_dataset, "val"), jitter=Jitter("none", 128, 128, False))
    a, b = ds[0]["input"][None], ds[0]["target"][None]
    g, d = build_generator(SMALL), build_discriminator(SMALL)
    before = {k: v.clone() for k, v in d.state_dict().items()}
    metrics = train_step(g, d, torch.optim.Adam(g.parameters()), torch.optim.Adam(d.parameters()),
                         a, b, StepConfig(gan_weight=0.0))
    assert set(metrics) == {"loss/g_l1"}
    assert all(torch.equal(before[k], v) for k, v in d.state_dict().items())


def test_discriminator_loss_is_halved(tiny_dataset):
    """With lr 0 nothing moves, so D's gradient must be exactly half that of (real + fake)."""
    g, d = build_generator(SMALL), build_discriminator(SMALL)
    a = torch.rand(1, 3, 128, 128) * 2 - 1
    b = torch.rand(1, 3, 128, 128) * 2 - 1
    g.eval(); d.eval()
    od = torch.optim.SGD(d.parameters(), lr=0.0)
    train_step(g, d, torch.optim.SGD(g.parameters(), lr=0.0), od, a, b, StepConfig())
    got = d.net[0].weight.grad.clone()
    # Reference: full (unhalved) loss gradient.
    from pix2pix.training.losses import discriminator_loss
    d.zero_grad(); d.requires_grad_(True)
    with torch.no_grad():
        fake = g(a)
    r, f = discriminator_loss("vanilla", d(torch.cat([a, b], 1)), d(torch.cat([a, fake], 1)))
    (r + f).backward()
    assert torch.allclose(got, 0.5 * d.net[0].weight.grad, atol=1e-7)


def test_bad_config_values_are_named(tiny_dataset, tmp_path):
    with pytest.raises(ValueError, match="image_size 100 is not a multiple of 128"):
        train(small_cfg(tiny_dataset, tmp_path / "r", data=DataConfig(root=str(tiny_dataset), image_size=100)),
              progress=False)
    with pytest.raises(ValueError, match="batch_size 9 is larger than the 4 training pairs"):
        train(small_cfg(tiny_dataset, tmp_path / "r2", batch_size=9), progress=False)
    with pytest.raises(ValueError, match="train.gan_mode='wgan'"):
        small_cfg(tiny_dataset, tmp_path, gan_mode="wgan").validate()


@pytest.mark.parametrize("split", ["train", "val"])
def test_a_truncated_file_stops_the_run_before_it_writes_or_trains(tiny_dataset, tmp_path, split):
    """The full decode check runs beside the model build (DecodeCheck) but still ends the run
    before config, logs or checkpoints exist, naming the file. The broken file is a truncated JPEG
    (its header reads fine, only decoding finds the cut) and not the split's first pair (which the
    split's own check decodes), so only the full check can catch it."""
    from PIL import Image

    from pix2pix.data import DatasetError

    last = sorted((tiny_dataset / split).iterdir())[-1]
    bad = last.with_suffix(".jpg")
    Image.open(last).convert("RGB").save(bad, quality=90)
    last.unlink()
    bad.write_bytes(bad.read_bytes()[: bad.stat().st_size // 2])
    out = tmp_path / "run"
    with pytest.raises(DatasetError, match=rf"{bad.name}.*truncated"):
        train(small_cfg(tiny_dataset, out, max_steps=2), progress=False)
    assert not out.exists() or not any(out.iterdir())


def test_loader_workers_do_not_change_the_result(tiny_dataset, tmp_path):
    """Jitter is seeded per (epoch, sample), so worker processes give the same batches."""
    a = train(small_cfg(tiny_dataset, tmp_path / "w0", max_steps=2), progress=False)
    data = DataConfig(root=str(tiny_dataset), image_size=128, workers=1)
    b = train(small_cfg(tiny_dataset, tmp_path / "w1", max_steps=2, data=data), progress=False)
    (g1, _), (g2, _) = weights(a), weights(b)
    assert all(torch.equal(g1[k], g2[k]) for k in g1)


def test_label_map_palette_is_saved_with_the_model(tmp_path, world):
    """Inputs painted with 3 flat colours: the checkpoint's config.json carries exactly those."""
    import numpy as np
    from conftest import cut_pairs, write_folders
    from pix2pix.checkpoint import read_info

    colours = np.array([[200, 30, 30], [20, 160, 40], [250, 250, 250]], np.uint8)
    pairs = []
    for i, (_, photo) in enumerate(cut_pairs(world, 4, 128, seed=5)):
        labels = np.zeros((128, 128), np.int64)
        labels[:, 40 + i * 5:] = 1
        labels[90:, :] = 2
        pairs.append((colours[labels], photo))
    write_folders(tmp_path / "labels", "train", pairs)
    run = train(small_cfg(tmp_path / "labels", tmp_path / "run", max_steps=1), progress=False)
    palette = read_info(run).palette
    assert sorted(map(tuple, palette)) == sorted(map(tuple, colours.tolist()))
    # A photo dataset gets no palette.
    photo_run = train(small_cfg(tmp_path / "labels", tmp_path / "run2",
                                max_steps=1, data=DataConfig(root=str(tmp_path / "labels"), image_size=128,
                                                             direction="BtoA")), progress=False)
    assert read_info(photo_run).palette is None


def test_samples_of_a_batch_statistics_model_show_what_it_translates(tiny_dataset, tmp_path):
    """A paper-recipe model tests with each image's own statistics: its sample grids do too."""
    import dataclasses

    import numpy as np
    from PIL import Image

    from pix2pix import Translator

    model = dataclasses.replace(SMALL, test_statistics="batch")
    run = train(small_cfg(tiny_dataset, tmp_path / "run", model=model, max_steps=4, lr=1e-3), progress=False)
    grid = np.asarray(Image.open(run / "samples" / "step_00000004.png"), dtype=np.float32) / 255
    rows = [grid[i * 130:i * 130 + 128] for i in range(2)]
    x = torch.stack([torch.from_numpy(r[:, :128]).permute(2, 0, 1) * 2 - 1 for r in rows])
    shown = np.stack([r[:, 130:258] for r in rows])

    def unit(t: torch.Tensor) -> np.ndarray:
        return t.add(1).div(2).clamp(0, 1).permute(0, 2, 3, 1).numpy()

    own = unit(Translator.from_pretrained(run, device="cpu").translate_tensor(x))
    running = unit(Translator.from_pretrained(run, device="cpu", batch_stats=False).translate_tensor(x))
    # The grid's inputs are 8-bit copies of the samples: within a few levels of the model's output.
    assert np.abs(shown - own).mean() < 2 / 255 < 5 / 255 < np.abs(shown - running).mean()
