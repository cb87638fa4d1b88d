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
