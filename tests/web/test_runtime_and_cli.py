"""ONNX Runtime Web's fetch-once cache and `export --web`'s refusals (no browser needed)."""
from __future__ import annotations

import io
import sys
import tarfile

import pytest

from pix2pix.cli import main
from pix2pix.export import web_runtime as runtime
from pix2pix.export.web_runtime import RuntimeUnavailable, runtime_dir


def _fake_tarball(path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name in runtime.FILES:
            data = b"not the real runtime"
            info = tarfile.TarInfo(f"package/dist/{name}" if name != "package.json" else "package/package.json")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    path.write_bytes(buf.getvalue())
    return path


def test_a_tarball_whose_integrity_differs_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("PIX2PIX_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PIX2PIX_ORT_WEB_TARBALL", str(_fake_tarball(tmp_path / "ort.tgz")))
    with pytest.raises(RuntimeUnavailable, match="does not match the pinned onnxruntime-web 1.30.0"):
        runtime_dir()
    assert not (tmp_path / "cache" / "onnxruntime-web" / runtime.VERSION).exists()  # nothing half-kept


def test_no_registry_and_no_cache_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("PIX2PIX_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("PIX2PIX_ORT_WEB_TARBALL", raising=False)
    monkeypatch.setattr(runtime, "TARBALL_URL", "http://127.0.0.1:9/onnxruntime-web.tgz")  # nothing listens
    with pytest.raises(RuntimeUnavailable, match="PIX2PIX_ORT_WEB_TARBALL"):
        runtime_dir()
    with pytest.raises(RuntimeUnavailable, match="not in"):
        runtime_dir(fetch=False)


def test_export_web_without_a_model_takes_the_builtin_or_says_what_to_give(tmp_path, capsys, monkeypatch):
    """Both branches, each for real: this install has the built-in model (the default), and an
    install without one (its module made unimportable) is told to pass --model."""
    from pix2pix.builtin import builtin_model_dir
    from pix2pix.cli.export import _default_model

    assert _default_model() == str(builtin_model_dir())
    monkeypatch.setitem(sys.modules, "pix2pix.builtin", None)  # import now raises ImportError
    assert main(["export", "--web", str(tmp_path / "page")]) == 2
    assert "--web needs --model DIR" in capsys.readouterr().err
    assert not (tmp_path / "page").exists()


def test_export_web_refusals(tmp_path, capsys, lively_model_dir):
    other = tmp_path / "photos"
    other.mkdir()
    (other / "holiday.jpg").write_bytes(b"precious")
    assert main(["export", "--web", str(other), "--model", str(lively_model_dir)]) == 2
    assert "not a pix2pix web export" in capsys.readouterr().err
    assert (other / "holiday.jpg").read_bytes() == b"precious"
    assert main(["export", "--web", str(tmp_path / "p"), "--model", str(lively_model_dir), "--int8"]) == 2
    assert "--web takes only" in capsys.readouterr().err
    assert main(["export", "--model", str(lively_model_dir)]) == 2
    assert "--out FILE.onnx (or --web DIR" in capsys.readouterr().err
