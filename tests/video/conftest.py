"""Session fixtures for the video tests: the world images, a model trained on them, and the clips."""
from __future__ import annotations

from pathlib import Path

import pytest

from .clips import SIZE, load_world, pan_path, render_path, static_path, train_map_model, write_clip

PAN_FRAMES = 36


@pytest.fixture(scope="session")
def world_pair():
    return load_world()


@pytest.fixture(scope="session")
def map_model(world_pair, tmp_path_factory) -> Path:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return train_map_model(tmp_path_factory.mktemp("map_model") / "model", *world_pair, steps=100)
    finally:
        torch.set_num_threads(before)


@pytest.fixture(scope="session")
def pan(world_pair, tmp_path_factory) -> dict:
    """The pan: input clip (with audio), target clip, the path and the raw rendered frames."""
    sat, relief = world_pair
    folder = tmp_path_factory.mktemp("pan")
    path = pan_path(PAN_FRAMES)
    inputs = list(render_path(sat, path, SIZE, SIZE))
    targets = list(render_path(relief, path, SIZE, SIZE))
    return {"input": write_clip(folder / "pan.mp4", inputs), "target": write_clip(folder / "target.mp4", targets,
                                                                                 audio=False),
            "path": path, "frames": inputs, "targets": targets}


@pytest.fixture(scope="session")
def static_clip(world_pair, tmp_path_factory) -> Path:
    sat, _ = world_pair
    frames = list(render_path(sat, static_path(12), SIZE, SIZE))
    return write_clip(tmp_path_factory.mktemp("static") / "static.mp4", frames)
