"""One way into a served model: an image and a clip sent at once are both answered right, and
their forward passes never overlap: every one runs on the inference worker, one at a time."""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np

from pix2pix import Translator
from pix2pix.serve import create_app, load_models
from pix2pix.serve.video import VideoLimits
from pix2pix.video.stream import translate_video

from video.clips import read_clip
from .serve_support import decode, png_bytes, random_image, serve_in_thread
from .test_video_api import clip


class Recorder:
    """Wraps a Translator's backend (the network itself): records each forward pass's thread,
    input shape and order, and the most passes ever running at once."""

    def __init__(self, backend) -> None:
        self.backend, self.lock = backend, threading.Lock()
        self.active = self.most = 0
        self.calls: list[tuple[str, tuple]] = []

    def __call__(self, x):
        with self.lock:
            self.active += 1
            self.most = max(self.most, self.active)
            self.calls.append((threading.current_thread().name, tuple(x.shape)))
        try:
            time.sleep(0.03)  # widens the window in which a second pass beside this one would show
            return self.backend(x)
        finally:
            with self.lock:
                self.active -= 1


def test_an_image_and_a_clip_at_once_take_turns_on_the_one_worker(model_dirs, tmp_path):
    (served,) = load_models([f"edges={model_dirs['edges']}"], device="cpu", backend="eager")
    recorder = Recorder(served.translator.backend)
    served.translator.backend = recorder
    app = create_app([served], video_limits=VideoLimits(max_frames=100))
    src = clip(tmp_path, 24, audio=False)                      # 128 x 96 frames: 128 x 128 passes
    images = [random_image(77, 200, seed=s) for s in range(6)]  # 256 x 128 passes: told apart
    clip_shape = (128, 128)

    with serve_in_thread(app) as url, ThreadPoolExecutor(8) as pool:
        clip_answer = pool.submit(httpx.post, url + "/api/translate-video", content=src.read_bytes(),
                                  timeout=300)
        deadline = time.monotonic() + 120
        while not any(shape[-2:] == clip_shape for _, shape in recorder.calls):
            assert time.monotonic() < deadline and not clip_answer.done(), "the clip never started"
            time.sleep(0.01)
        image_answers = [pool.submit(httpx.post, url + "/api/translate", content=png_bytes(im), timeout=120)
                         for im in images]
        clip_resp, image_resps = clip_answer.result(), [f.result() for f in image_answers]

    # Both answers are right: the images exactly as the Translator makes them alone ...
    reference = Translator.from_pretrained(model_dirs["edges"], device="cpu", backend="eager")
    for im, resp in zip(images, image_resps):
        assert resp.status_code == 200, resp.text
        want = np.round(reference.translate_array(im / 255.0) * 255).astype(np.uint8)
        assert np.abs(decode(resp.content).astype(int) - want).max() <= 1
    # ... and the clip as translating it here.
    assert clip_resp.status_code == 200, clip_resp.text
    out = tmp_path / "out.mp4"
    out.write_bytes(clip_resp.content)
    translate_video(reference, src, tmp_path / "here.mp4")
    got, _, _ = read_clip(out)
    here, _, _ = read_clip(tmp_path / "here.mp4")
    assert len(got) == 24 and max(np.abs(a.astype(np.float32) - b).mean() for a, b in zip(got, here)) < 1.0

    # One forward pass at a time, every one on the inference worker, the images' between the clip's.
    assert recorder.most == 1
    assert {name for name, _ in recorder.calls} == {"pix2pix-inference"}
    kinds = ["clip" if shape[-2:] == clip_shape else "image" for _, shape in recorder.calls]
    assert kinds.count("image") >= 1 and kinds.count("clip") >= 6  # 24 frames, at most 4 a pass
    first, last = kinds.index("clip"), len(kinds) - 1 - kinds[::-1].index("clip")
    assert "image" in kinds[first:last], kinds  # they were in flight together, and took turns
