from __future__ import annotations

import pytest

from browser_support import launch_browser

from .web_support import camera_args, write_y4m


@pytest.fixture(scope="module")
def browser():
    yield from launch_browser()


@pytest.fixture(scope="module")
def camera_browser(tmp_path_factory):
    """Chromium whose camera is a fake device playing a generated Y4M clip (every frame differs)."""
    clip = tmp_path_factory.mktemp("camera") / "clip.y4m"
    write_y4m(clip)
    yield from launch_browser(camera_args(clip))


@pytest.fixture(scope="session")
def builtin_page(tmp_path_factory):
    """The built-in (label-map) model exported as a page the way `pix2pix export --web` does by
    default (WASM and WebGPU flavours), with the examples it ships. Exported once (tens of seconds
    of ONNX export) for the picker tests (test_examples, WASM) and the WebGPU test (test_webgpu);
    the pages are only read."""
    from pix2pix.builtin import builtin_model_dir
    from pix2pix.export.web import export_web
    from pix2pix.inference.translator import Translator

    folder = tmp_path_factory.mktemp("builtin") / "page"
    t = Translator.from_pretrained(builtin_model_dir(), device="cpu")
    return export_web(t, folder, source=builtin_model_dir(), name="builtin", webgpu=True)
