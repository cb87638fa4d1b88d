"""train() returns a TrainResult: final step, checkpoint, last losses, why it stopped; the CLI
prints from it. The run here also takes the multi-scale D with feature matching end to end."""
import json
import os

from pix2pix import TrainResult as PublicTrainResult
from pix2pix.checkpoint import load_training_checkpoint
from pix2pix.cli import main
from pix2pix.config import DataConfig, ModelConfig, TrainConfig
from pix2pix.training import TrainResult, train

TINY = ModelConfig(generator="unet_128", base_channels=4, d_base_channels=4, d_layers=2,
                   discriminator="multiscale", d_scales=2)


def cfg(root, out, **kw) -> TrainConfig:
    base = dict(model=TINY, data=DataConfig(root=str(root), image_size=128), out=str(out),
                batch_size=2, epochs=1, decay_epochs=1, log_every=1, sample_every=100,
                checkpoint_every=100, tensorboard="off", feature_matching_weight=10.0)
    base.update(kw)
    return TrainConfig(**base)


def test_result_of_a_run_cut_by_max_steps_then_finished(tiny_dataset, tmp_path):
    # 4 pairs, batch 2: 2 steps per epoch, 4 in the schedule.
    result = train(cfg(tiny_dataset, tmp_path / "r", max_steps=3), progress=False)
    assert PublicTrainResult is TrainResult and isinstance(result, TrainResult)
    assert (result.stopped, result.step, result.total_steps) == ("max_steps", 3, 3)
    assert not result.resumable and result.best is None
    assert result.checkpoint == tmp_path / "r" / "checkpoints" / "step_00000003"
    assert load_training_checkpoint(result)[3]["step"] == 3
    # The multi-scale D's feature-matching term reached the step and the log.
    assert {"loss/g_feature_matching", "loss/g_gan", "loss/d_real"} <= result.metrics.keys()
    last = json.loads((result / "metrics.jsonl").read_text().splitlines()[-1])
    assert last["loss/g_feature_matching"] == result.metrics["loss/g_feature_matching"] > 0
    # Still the run directory wherever a path was expected.
    assert os.fspath(result) == str(result) == str(tmp_path / "r")

    done = train(cfg(tiny_dataset, tmp_path / "r", max_steps=None), resume=True, progress=False)
    assert (done.stopped, done.step, done.total_steps) == ("finished", 4, 4)


def test_cli_prints_from_the_result(tiny_dataset, tmp_path, capsys):
    out = tmp_path / "cli"
    args = ["train", "--data", str(tiny_dataset), "--out", str(out), "--arch", "unet_128",
            "--base-channels", "4", "--image-size", "128", "--batch-size", "2", "--no-progress",
            "--set", "model.d_base_channels=4", "--set", "tensorboard=off"]
    assert main([*args, "--max-steps", "1", "--max-time", "0.001"]) == 0
    assert f"stopped (max_time) at step 1 of 1; continue with `pix2pix train --resume --out {out}`" \
        in capsys.readouterr().out
    (out / "status.json").unlink()  # the CLI reads the result, not the file
    assert main([*args, "--max-steps", "2", "--max-time", "1h", "--resume"]) == 0
    assert f"done: model in {out}" in capsys.readouterr().out
