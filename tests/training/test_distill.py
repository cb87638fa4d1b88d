"""`pix2pix distill`: the student learns the teacher's outputs, through the ordinary training loop."""
import json

import pytest
import torch
from safetensors.torch import load_file

from pix2pix.checkpoint import load_pretrained
from pix2pix.config import DataConfig, DistillConfig, ModelConfig, TrainConfig
from pix2pix.models import build_discriminator
from pix2pix.training import train
from pix2pix.training.distill import Teacher, attention

STUDENT = ModelConfig(generator="unet_128", base_channels=8, d_base_channels=8, d_layers=2, dropout=0.0)


def distill_cfg(root, out, teacher, **kw) -> TrainConfig:
    distill = kw.pop("distill", {})
    base = dict(model=STUDENT, out=str(out), batch_size=4, epochs=100, decay_epochs=0, log_every=1,
                sample_every=1000, checkpoint_every=1000, seed=5, l1_weight=0.0, tensorboard="off",
                # Resize without flips: the crop repeats every epoch, so teacher outputs are cached.
                data=DataConfig(root=str(root), image_size=128, preprocess="resize", flip=False),
                distill=DistillConfig(teacher=str(teacher), **distill))
    base.update(kw)
    return TrainConfig(**base)


def losses(run, key="loss/g_teacher"):
    return [json.loads(l)[key] for l in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.usefixtures("one_thread")
def test_distill_pulls_the_student_onto_the_teacher(tiny_dataset, lively_model_dir, tmp_path):
    """L1 to a lively teacher (He-scaled random weights: a hard, high-frequency target) falls by a
    large factor in a bounded number of steps (measured: 0.615 -> 0.151 in 80 steps)."""
    run = train(distill_cfg(tiny_dataset, tmp_path / "run", lively_model_dir, max_steps=80, lr=3e-3,
                            gan_weight=0.0), progress=False)
    l1 = losses(run)
    assert l1[0] > 0.4  # the teacher's output is far from the untrained student's
    assert min(l1[-5:]) < l1[0] / 3, (l1[0], l1[-5:])
    # An ordinary pretrained directory that remembers its teacher.
    g, info = load_pretrained(run)
    assert info.model.generator == "unet_128"
    assert info.extra["distilled_from"] == str(lively_model_dir)


@pytest.mark.usefixtures("one_thread")
def test_distill_resume_is_exact_and_cache_changes_nothing(tiny_dataset, lively_model_dir, tmp_path):
    """4 steps == 2 + resume + 2 (bit-equal weights), with GAN and feature terms on, and the
    same with the teacher recomputed every step (the cache is exact)."""
    kw = dict(distill={"feature_weight": 10.0}, l1_weight=10.0)
    full = train(distill_cfg(tiny_dataset, tmp_path / "full", lively_model_dir, max_steps=4, **kw),
                 progress=False)
    half = train(distill_cfg(tiny_dataset, tmp_path / "half", lively_model_dir, max_steps=2, **kw),
                 progress=False)
    train(distill_cfg(tiny_dataset, tmp_path / "half", lively_model_dir, max_steps=4, **kw),
          resume=True, progress=False)
    nocache = train(distill_cfg(tiny_dataset, tmp_path / "nocache", lively_model_dir, max_steps=4,
                                distill={"feature_weight": 10.0, "cache": "off"}, l1_weight=10.0),
                    progress=False)

    def weights(run):
        path = json.loads((run / "latest.json").read_text())["path"]
        return (load_file(str(run / path / "model" / "generator.safetensors")),
                load_file(str(run / path / "discriminator.safetensors")))

    (g1, d1), (g2, d2), (g3, d3) = weights(full), weights(half), weights(nocache)
    for a, b in ((g1, g2), (d1, d2), (g1, g3), (d1, d3)):
        for k in a:
            assert torch.equal(a[k], b[k]), k
    assert {"loss/g_teacher", "loss/g_feature", "loss/g_l1", "loss/g_gan"} <= \
        json.loads((full / "metrics.jsonl").read_text().splitlines()[0]).keys()
    assert [json.loads(l)["step"] for l in (half / "metrics.jsonl").read_text().splitlines()] == [1, 2, 3, 4]


def test_discriminator_starts_from_the_teachers(tiny_dataset, tmp_path):
    """A teacher from a run brings its D; one of another shape is left alone."""
    teacher_cfg = ModelConfig(generator="unet_128", base_channels=8, d_base_channels=8, d_layers=2)
    teacher_run = train(TrainConfig(model=teacher_cfg, out=str(tmp_path / "teacher"), max_steps=1,
                                    data=DataConfig(root=str(tiny_dataset), image_size=128),
                                    tensorboard="off"), progress=False)
    cfg = distill_cfg(tiny_dataset, tmp_path / "s", teacher_run, max_steps=1)
    teacher = Teacher(cfg, torch.device("cpu"))
    d = build_discriminator(STUDENT)
    assert teacher.init_discriminator(d)
    path = json.loads((teacher_run / "latest.json").read_text())["path"]
    saved = load_file(str(teacher_run / path / "discriminator.safetensors"))
    assert all(torch.equal(d.state_dict()[k], saved[k]) for k in saved)
    other = build_discriminator(ModelConfig(d_base_channels=16))
    before = {k: v.clone() for k, v in other.state_dict().items()}
    assert not teacher.init_discriminator(other)
    assert all(torch.equal(other.state_dict()[k], before[k]) for k in before)


def test_attention_maps_ignore_channel_count():
    f = torch.rand(2, 8, 4, 4)
    assert torch.allclose(attention(f), attention(torch.cat([f, f], 1)), atol=1e-6)
    assert torch.allclose(attention(f).norm(dim=1), torch.ones(2))


def test_bad_teacher_is_named(tiny_dataset, tmp_path):
    cfg = distill_cfg(tiny_dataset, tmp_path / "s", tmp_path / "nothing", max_steps=1)
    with pytest.raises(FileNotFoundError, match="nothing does not exist"):
        train(cfg, progress=False)


def test_a_batch_statistics_teacher_teaches_what_it_translates(tmp_path):
    """A paper-recipe (or imported) teacher normalises each image with its own statistics when it
    translates; the student must learn those outputs, not the running statistics' ones."""
    from pix2pix.checkpoint import PretrainedInfo, save_pretrained
    from pix2pix.inference.translator import Translator
    from pix2pix.models import build_generator

    torch.manual_seed(0)
    cfg = ModelConfig(generator="unet_128", base_channels=8, test_statistics="batch")
    g = build_generator(cfg)
    g.train()
    g(torch.randn(2, 3, 128, 128) * 0.5 + 0.3)  # running statistics unlike the test images'
    folder = save_pretrained(g.eval(), PretrainedInfo(model=cfg), tmp_path / "teacher")
    teacher = Teacher(distill_cfg(tmp_path, tmp_path / "s", folder, max_steps=1), torch.device("cpu"))
    x = torch.rand(2, 3, 128, 128, generator=torch.Generator().manual_seed(1)) * 2 - 1
    taught = teacher._run(x)[0]
    own = Translator.from_pretrained(folder, device="cpu").translate_tensor(x)
    running = Translator.from_pretrained(folder, device="cpu", batch_stats=False).translate_tensor(x)
    assert (taught - own).abs().max() < 1e-5 and (taught - running).abs().mean() > 0.05
