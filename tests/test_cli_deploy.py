"""`pix2pix export`, `import-weights` and the fast `translate`, run as a user runs them."""
import json
import re

import numpy as np
import torch
from PIL import Image

from conftest import cut_pairs
from test_cli import cli
from test_interop import RefUnet, batch_norms_in_train_mode, randomise


def test_export_then_translate_with_the_onnx_file(lively_model_dir, tmp_path, world):
    out = tmp_path / "m.onnx"
    res = cli("export", "--model", lively_model_dir, "--out", out, "--int8")
    diff = float(re.search(r"max \|diff\| ([0-9.e+-]+)", res.stdout).group(1))
    assert diff < 1e-4
    assert re.search(r"m\.int8\.onnx .*PSNR \d+\.\d dB against the fp32 output", res.stdout)
    assert "opset 18" in res.stdout and "Traceback" not in res.stderr
    folder = tmp_path / "in"
    folder.mkdir()
    for i, (a, _) in enumerate(cut_pairs(world, 5, 128, seed=4)):
        Image.fromarray(a).save(folder / f"t{i}.png")
    Image.fromarray(cut_pairs(world, 1, 200, seed=5)[0][0][:, :150]).save(folder / "odd.png")
    via_onnx = cli("translate", "--model", out, folder, "--out", tmp_path / "o1", "--batch-size", "2",
                   "--device", "cpu", "--no-progress")
    assert re.search(r"translated 6 image\(s\) .* img/s; backend onnxruntime", via_onnx.stdout)
    via_torch = cli("translate", "--model", lively_model_dir, folder, "--out", tmp_path / "o2",
                    "--backend", "eager", "--device", "cpu", "--no-progress")
    assert "backend eager" in via_torch.stdout
    for name in ["t0.png", "t4.png", "odd.png"]:
        a = np.asarray(Image.open(tmp_path / "o1" / name), dtype=np.int16)
        b = np.asarray(Image.open(tmp_path / "o2" / name), dtype=np.int16)
        assert a.shape == b.shape and np.abs(a - b).max() <= 1  # 8-bit rounding only
    assert Image.open(tmp_path / "o1" / "odd.png").size == (150, 200)


def test_translate_tiles_large_images_and_logs_auto(lively_model_dir, tmp_path, world):
    big = world[0][600:1100, 1000:1700]  # 700 x 500
    Image.fromarray(big).save(tmp_path / "big.png")
    res = cli("translate", "--model", lively_model_dir, tmp_path / "big.png", "--out", tmp_path / "o",
              "--tile", "256", "--overlap", "64", "--device", "cpu")
    assert "backend auto -> onnxruntime on cpu" in res.stderr
    assert re.search(r"tiling 700x500 px into \d+ tile", res.stderr)
    assert Image.open(tmp_path / "o" / "big.png").size == (700, 500)
    bad = cli("translate", "--model", lively_model_dir, tmp_path / "big.png", "--out", tmp_path / "o",
              "--tile", "300", check=False)
    assert bad.returncode == 2 and "tile 300 must be a positive multiple of 128" in bad.stderr
    assert "try --tile 256" in bad.stderr and "Traceback" not in bad.stderr


def test_import_weights_command(tmp_path):
    ref = randomise(RefUnet(num_downs=7, ngf=8))
    torch.save(ref.state_dict(), tmp_path / "latest_net_G.pth")
    res = cli("import-weights", tmp_path / "latest_net_G.pth", "--arch", "unet_128", "--out", tmp_path / "m",
              "--direction", "BtoA")
    assert "as unet_128: 3->3 channels, base 8, batch norm" in res.stdout
    Image.new("RGB", (128, 128), (200, 40, 90)).save(tmp_path / "x.png")
    x = torch.tensor([200, 40, 90], dtype=torch.float32).div(127.5).sub(1).view(1, 3, 1, 1).expand(1, 3, 128, 128)

    def as_png(y: torch.Tensor) -> np.ndarray:
        return y[0].add(1).div(2).clamp(0, 1).mul(255).add(0.5).floor().permute(1, 2, 0).numpy()

    with torch.no_grad():
        running = as_png(ref.eval()(x))
        own = as_png(batch_norms_in_train_mode(ref)(x))
    assert np.abs(running - own).max() > 10
    # An imported model tests as the reference does by default (each image's statistics);
    # --running-stats is the reference's --eval.
    for flags, expected in (((), own), (("--running-stats",), running)):
        cli("translate", "--model", tmp_path / "m", tmp_path / "x.png", "--out", tmp_path / "o",
            "--backend", "eager", *flags)
        got = np.asarray(Image.open(tmp_path / "o" / "x.png"), dtype=np.float32)
        assert np.abs(got - expected).max() <= 1, flags
    wrong = cli("import-weights", tmp_path / "latest_net_G.pth", "--arch", "unet_256", "--out", tmp_path / "w",
                check=False)
    assert wrong.returncode == 2 and "looks like: U-Net with 7 levels (unet_128)" in wrong.stderr


def test_web_export_of_a_builtin_by_name_keeps_its_examples(tmp_path):
    # `--model relief2satellite` (a name, no such file here) is the built-in, examples included:
    # the page opens on them, as it does for `export --web` with no --model.
    from pix2pix.builtin import builtin_model_dir
    from pix2pix.export.examples import read_index

    shipped = [e["input"] for e in read_index(builtin_model_dir("relief2satellite") / "examples")]
    res = cli("export", "--web", "page", "--model", "relief2satellite", "--no-webgpu", cwd=tmp_path)
    assert "wrote page/index.html" in res.stdout
    config = json.loads((tmp_path / "page" / "config.json").read_text())
    assert [e["input"] for e in config["examples"]] == shipped and len(shipped) == 4
    assert all((tmp_path / "page" / "examples" / name).is_file() for name in shipped)
