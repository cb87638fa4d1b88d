"""The closing table of `pix2pix distill`, and the command's argument checks."""
import json

import pytest

from pix2pix.cli import main
from pix2pix.metrics.compare import compare_models, format_table
from pix2pix.models.profile import profile


@pytest.mark.usefixtures("one_thread")
def test_table_scores_against_target_and_teacher(tiny_dataset, lively_model_dir, tmp_path):
    from pix2pix.checkpoint import load_pretrained

    rows = compare_models({"teacher": lively_model_dir, "copy": lively_model_dir}, tiny_dataset,
                          split="val", backends=("eager",), metrics=("l1", "psnr"), repeats=2,
                          latency_size=128)
    teacher, copy = rows
    assert teacher.vs_teacher["l1"] == 0 and copy.vs_teacher["l1"] == 0  # identical networks
    assert copy.vs_target == teacher.vs_target and teacher.vs_target["l1"] > 0.05
    g, _ = load_pretrained(lively_model_dir)
    p = profile(g, size=128)
    assert (teacher.parameters, teacher.macs, teacher.macs_torchprofile) == \
        (p.parameters, p.macs, p.macs_torchprofile)
    assert teacher.latency_ms["eager"] > 0
    table = format_table(rows, latency_size=128)
    assert table.count("\n") == 3 and "l1 vs teacher" in table and "655,443" in table
    assert "200.0000" not in table and table.splitlines()[2].endswith("| = teacher | = teacher |")


def test_distill_cli_checks_its_arguments(tiny_dataset, lively_model_dir, tmp_path, capsys):
    out = str(tmp_path / "run")
    assert main(["distill", "--data", str(tiny_dataset), "--out", out]) == 2
    assert "--teacher MODEL is required" in capsys.readouterr().err
    assert main(["distill", "--teacher", str(lively_model_dir), "--data", str(tiny_dataset),
                 "--out", out, "--student", "unet_9000"]) == 2
    assert "--student 'unet_9000' is neither a preset" in capsys.readouterr().err
    assert main(["distill", "--teacher", str(lively_model_dir), "--data", str(tiny_dataset),
                 "--out", out, "--arch", "unet_128"]) == 2
    assert "not --arch" in capsys.readouterr().err
    # A dry run prints the resolved config: the student inherits the teacher's channels and D.
    assert main(["distill", "--teacher", str(lively_model_dir), "--data", str(tiny_dataset),
                 "--out", out, "--student", "mobile_unet_128_w16", "--dry-run"]) == 0
    printed = capsys.readouterr().out
    cfg = json.loads(printed[:printed.rindex("}") + 1])
    assert cfg["model"]["generator"] == "mobile_unet_128" and cfg["model"]["base_channels"] == 16
    assert cfg["distill"]["teacher"] == str(lively_model_dir) and cfg["l1_weight"] == 0.0
    assert cfg["data"]["image_size"] == 256  # the teacher's (lively was saved at the default)


def test_models_command_lists_architectures(capsys):
    """(Listing all takes ~10 s of forwards at 256 px, ResNets 50 GMAC each: two names here; every
    architecture's MACs are checked in tests/models/test_students.py.)"""
    assert main(["models", "--only", "unet_256,unet_256_w16", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["unet_256"]["macs"] == 6_048_186_368
    assert rows["unet_256"]["macs_torchprofile"] == 18_140_364_800
    assert rows["unet_256_w16"]["macs"] * 14 < rows["unet_256"]["macs"]
    assert main(["models", "--only", "nope"]) == 2
    assert "unknown name(s) nope" in capsys.readouterr().err
