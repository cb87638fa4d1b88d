from __future__ import annotations

import pytest

from browser_support import launch_browser


@pytest.fixture(scope="module")
def browser():
    yield from launch_browser()
