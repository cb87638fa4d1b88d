"""`--init-from MODEL`: fine-tuning starts from a trained model's weights, exactly, with fresh
optimisers; another architecture is refused naming both; the run records where it started."""
import dataclasses
import hashlib
import json

import pytest
import torch
from safetensors.torch import load_file

from pix2pix.cli import build_parser
from pix2pix.cli.train import build_config
from pix2pix.checkpoint import latest_checkpoint, load_training_checkpoint
from pix2pix.config import DataConfig, ModelConfig, TrainConfig
from pix2pix.models import build_discriminator, build_generator
from pix2pix.training import train
from pix2pix.training.init import InitMismatch, init_weights

pytestmark = pytest.mark.usefixtures("one_thread")
SMALL = ModelConfig(generator="unet_128", base_channels=8, d_base_channels=8)


def _cfg(data, out, **kw) -> TrainConfig:
    kw = {"max_steps": 2, **kw}
    return TrainConfig(model=kw.pop("model", SMALL), data=DataConfig(root=str(data), image_size=128),
                       out=str(out), epochs=1, decay_epochs=1, device="cpu", tensorboard="off",
                       sample_every=100, **kw)


@pytest.fixture
def source_run(tiny_dataset, tmp_path):
    return train(_cfg(tiny_dataset, tmp_path / "source", seed=5), progress=False)


def test_weights_are_copied_exactly_from_a_run_a_checkpoint_and_a_model_dir(source_run):
    ckpt = latest_checkpoint(source_run)
    g_file, d_file = ckpt / "model" / "generator.safetensors", ckpt / "discriminator.safetensors"
    for path, with_d in ((source_run, True), (ckpt, True), (ckpt / "model", True)):
        torch.manual_seed(123)  # another init than the source's
        g, d = build_generator(SMALL), build_discriminator(SMALL)
        record = init_weights(path, SMALL, g, d)
        for name, file, module in (("G", g_file, g), ("D", d_file, d)):
            for k, v in load_file(str(file)).items():
                assert torch.equal(module.state_dict()[k], v), (path, name, k)
        assert record["discriminator"] is with_d
        assert record["generator_sha256"] == hashlib.sha256(g_file.read_bytes()).hexdigest()


def test_shrink_and_perturb_blends_conv_weights_with_the_fresh_draw_and_keeps_the_rest(source_run):
    src = load_file(str(latest_checkpoint(source_run) / "model" / "generator.safetensors"))
    torch.manual_seed(123)
    g = build_generator(SMALL)
    fresh = {k: v.clone() for k, v in g.state_dict().items()}
    init_weights(source_run, SMALL, g, build_discriminator(SMALL), shrink=0.4, perturb=0.3)
    blended = 0
    for k, v in g.state_dict().items():
        if v.ndim > 1:  # convolution weights: 0.4 * source + 0.3 * this run's initial draw
            torch.testing.assert_close(v, 0.4 * src[k] + 0.3 * fresh[k])
            assert not torch.allclose(v, src[k])
            blended += 1
        else:  # biases, norm affines and running statistics: the source's, exactly
            assert torch.equal(v, src[k]), k
    assert blended >= 10


def test_a_run_started_from_a_model_trains_from_its_weights_with_fresh_optimisers(source_run, tiny_dataset,
                                                                                   tmp_path):
    src_g = load_file(str(latest_checkpoint(source_run) / "model" / "generator.safetensors"))
    run = train(_cfg(tiny_dataset, tmp_path / "tuned", seed=9, max_steps=1,
                     init_from=str(source_run)), progress=False)
    _, g_state, _, state = load_training_checkpoint(run)
    # One Adam step moves each weight by about lr at most: the run started at the source's weights.
    params = dict(build_generator(SMALL).named_parameters())
    moved = max((g_state[k] - src_g[k]).abs().max().item() for k in params)
    assert 0 < moved <= 2e-4 * 1.05
    # Fresh optimisers: Adam has taken this run's steps only (the source's 2 are not carried over).
    assert {int(s["step"]) for s in state["opt_g"]["state"].values()} == {1}
    assert state["step"] == 1
    # Where it started: config.json, status.json (shown in report.html) and the model's config.
    assert json.loads((run / "config.json").read_text())["init_from"] == str(source_run)
    status = json.loads((run / "status.json").read_text())
    assert status["init_from"]["source"] == str(source_run) and status["init_from"]["discriminator"]
    assert "init_from" in (run / "report.html").read_text()
    model_cfg = json.loads((latest_checkpoint(run) / "model" / "config.json").read_text())
    assert model_cfg["init_from"] == str(source_run)


def test_another_architecture_is_refused_naming_both(source_run, tiny_dataset, tmp_path):
    wider = dataclasses.replace(SMALL, base_channels=16)
    with pytest.raises(InitMismatch, match=r"unet_128 \(base 8, 3->3.*unet_128 \(base 16, 3->3"):
        train(_cfg(tiny_dataset, tmp_path / "w", model=wider, init_from=str(source_run)), progress=False)
    gray = dataclasses.replace(SMALL, in_channels=1)
    with pytest.raises(InitMismatch, match=r"3->3 channels.*1->3 channels.*in_channels 3 vs 1"):
        train(_cfg(tiny_dataset, tmp_path / "g", model=gray, init_from=str(source_run)), progress=False)
    assert not (tmp_path / "w" / "latest.json").exists()


def test_the_cli_takes_the_architecture_from_the_model_started_from(source_run):
    def cli(*argv):
        return build_config(build_parser().parse_args(["train", "--data", "d", *argv]))

    # The default recipe asks for a resize decoder; the source has a transposed-conv one.
    cfg = cli("--init-from", str(source_run))
    assert (cfg.model.generator, cfg.model.base_channels, cfg.model.upsample) == ("unet_128", 8, "transpose")
    assert cfg.init_from == str(source_run) and cfg.perceptual_weight > 0  # the rest of the recipe stays
    assert cli("--init-from", str(source_run), "--base-channels", "16").model.base_channels == 16



def test_the_architecture_is_adopted_however_the_source_is_given(source_run, tmp_path):
    def cli(*argv):
        return build_config(build_parser().parse_args(["train", "--data", "d", *argv]))

    config = tmp_path / "finetune.json"
    config.write_text(json.dumps({"init_from": str(source_run)}))
    for argv in (("--set", f"init_from={source_run}"), ("--config", str(config))):
        cfg = cli(*argv)
        assert (cfg.model.base_channels, cfg.model.upsample, cfg.init_from) == (8, "transpose", str(source_run)), argv
    # --set comes last, as for every field: it names the model started from.
    assert cli("--config", str(config), "--set", "init_from=").model.upsample == "resize"
