"""``POST /api/translate-video``: a clip in, the translated clip out (same container, frames,
timing, size, rotation and audio), with the limits style of images: bytes on the wire, then
duration, frame count and pixels per frame, all checked before any frame is translated.

One clip is translated at a time (a clip keeps the model busy for seconds to minutes); others
wait, and beyond ``max_waiting`` are refused with 503 and Retry-After. Decoding, flow and encoding
run in the thread pool; every forward pass of the clip runs on the inference worker
(``InferenceQueue.translator_for``), taking turns with the images' batches, never beside them.
"""
from __future__ import annotations

import asyncio
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable, Optional

from fastapi import FastAPI, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from .batcher import InferenceQueue
from .errors import ApiError
from .upload import sniff_container

log = logging.getLogger(__name__)

MEDIA_TYPES = {".mp4": "video/mp4", ".mov": "video/quicktime", ".webm": "video/webm",
               ".mkv": "video/x-matroska", ".gif": "image/gif", ".avi": "video/x-msvideo"}


@dataclass(frozen=True)
class VideoLimits:
    max_bytes: int = 200 * 1024 * 1024
    max_seconds: float = 120.0
    max_frames: int = 3600
    max_waiting: int = 4

    def __post_init__(self) -> None:
        if min(self.max_bytes, self.max_seconds, self.max_frames) <= 0 or self.max_waiting < 0:
            raise ValueError(f"video limits must be positive, got {self}")


def mp4_truncation(data: bytes) -> Optional[str]:
    """Why an MP4/MOV upload is truncated (a top-level box runs past the end, or the index, the
    ``moov`` box, is missing), or None when its boxes are whole. A recording stopped early or a
    cut-off transfer looks like this; PyAV would only say it is no video."""
    offset, seen = 0, set()
    while offset + 8 <= len(data):
        size, kind = int.from_bytes(data[offset:offset + 4], "big"), data[offset + 4:offset + 8]
        header = 8
        if size == 1:  # a 64-bit size follows the type
            if offset + 16 > len(data):
                return f"it ends inside the header of its {kind.decode('latin-1')!r} box"
            size, header = int.from_bytes(data[offset + 8:offset + 16], "big"), 16
        if size == 0:  # the box runs to the end of the file
            seen.add(kind)
            break
        if size < header:
            return None  # not a box structure at all: corrupt rather than truncated
        if offset + size > len(data):
            return (f"its {kind.decode('latin-1')!r} box declares {size:,} bytes from byte {offset:,}, "
                    f"but the upload ends after {len(data):,} bytes")
        seen.add(kind)
        offset += size
    if b"moov" not in seen:
        return "it has no 'moov' box (the index an MP4 writes when the recording is finished)"
    return None


def check_options(temporal: str, strength: float) -> None:
    """Refuse (400 ``bad_parameter``) a ``temporal`` method or ``strength`` no clip can be translated
    with, before a byte of the clip is read, naming the query parameter (not the CLI's flag)."""
    from ..video.temporal import TEMPORAL_METHODS, make_temporal

    if temporal not in TEMPORAL_METHODS:
        raise ApiError(400, "bad_parameter", f"query.temporal: {temporal!r} is not a temporal method; "
                                             f"use one of {', '.join(TEMPORAL_METHODS)}")
    try:
        make_temporal(temporal, strength)
    except ValueError:
        raise ApiError(400, "bad_parameter", f"query.strength: {strength!r} is out of range for "
                                             f"temporal={temporal}; give a strength in [0, 1)") from None


def _translate_file(served, translator, src: Path, dst: Path, limits: VideoLimits, max_pixels: int,
                    temporal: str, strength: float):
    try:
        import av  # noqa: F401
    except ImportError:
        raise ApiError(501, "no_video_support", "this server has no PyAV; install it with "
                                                "pip install 'pix2pix[video]'") from None
    from ..video.io import NotAVideo, NoVideoStream, UndecodableFrame, VideoReader
    from ..video.stream import translate_video
    from ..video.temporal import make_temporal

    try:
        with VideoReader(src) as reader:
            info = reader.info
    except NotAVideo as e:
        raise ApiError(415, "not_a_video", str(e).replace(str(src), "the upload")) from None
    except NoVideoStream as e:
        raise ApiError(400, "no_video_stream", str(e).replace(str(src), "the upload")) from None
    except UndecodableFrame as e:
        raise ApiError(400, "undecodable_frame", str(e).replace(str(src), "the upload")) from None
    frames = info.frames or 0
    seconds = frames / info.fps if info.fps else 0.0
    if frames > limits.max_frames:
        raise ApiError(413, "too_many_frames", f"the clip has {frames:,} frames, over the limit of "
                                               f"{limits.max_frames:,}; send a shorter clip")
    if seconds > limits.max_seconds:
        raise ApiError(413, "too_long", f"the clip lasts {seconds:.1f} s, over the limit of "
                                        f"{limits.max_seconds:g} s; send a shorter clip")
    m = served.multiple
    w, h = info.display_size
    padded = (-(-w // m) * m) * (-(-h // m) * m)
    if padded > max_pixels:
        raise ApiError(413, "too_many_pixels", f"frames of {w}x{h} px are {padded:,} px once padded to "
                                               f"multiples of {m}, over the limit of {max_pixels:,}")
    count = {"n": 0}

    def on_frame(n: int) -> None:
        count["n"] += n
        if count["n"] > limits.max_frames:  # the container under-declared its length
            raise ApiError(413, "too_many_frames", f"the clip has over {limits.max_frames:,} frames")

    try:
        return translate_video(translator, src, dst, temporal=make_temporal(temporal, strength),
                               on_frame=on_frame)
    except UndecodableFrame as e:
        raise ApiError(400, "undecodable_frame", str(e).split("; the ")[0].replace(str(src), "the upload")) from None
    except ValueError as e:  # the clip and the model do not go together (e.g. a 4-channel model)
        raise ApiError(400, "cannot_translate", str(e).replace(str(src), "the upload")) from None


def add_video_route(app: FastAPI, *, pick: Callable[[Optional[str]], Any],
                    read_body: Callable[[Request, int], Awaitable[bytes]],
                    from_multipart: Callable[[Request, bytes], Awaitable[tuple[bytes, Optional[str]]]],
                    limits: VideoLimits, max_pixels: int, queue: InferenceQueue) -> None:
    from ..video.temporal import describe_methods  # the API text lists the table's methods

    slot = asyncio.Semaphore(1)
    waiting = {"n": 0}

    @app.post("/api/translate-video", response_class=Response, summary="Translate a video clip",
              responses={200: {"content": {t: {} for t in sorted(set(MEDIA_TYPES.values()))},
                               "description": "the translated clip, in the upload's container"},
                         400: {"description": "no video stream, truncated clip, undecodable frame, bad option"},
                         413: {"description": "over the byte, duration, frame or pixel limit"},
                         415: {"description": "not a clip the server reads (MP4, MOV, MKV, WebM, AVI, GIF)"},
                         503: {"description": "too many clips waiting; retry after Retry-After seconds"}})
    async def translate_video(request: Request,
                              model: Optional[str] = Query(None, description="model name; default the first"),
                              temporal: str = Query("none", description=f"flow stabilisation: {describe_methods()}"),
                              strength: float = Query(0.5, description="temporal strength in [0, 1)")) -> Response:
        """Send a clip as the raw body (or multipart field `video`); get the translated clip back
        in the same container with the same frames, timestamps, size, rotation and (copied) audio.

        Response headers: `X-Model`, `X-Frames`, `X-Encoder`, `X-Seconds`, and the flicker metric
        (`X-Warping-Error` of the output, `X-Input-Warping-Error` of the upload)."""
        check_options(temporal, strength)  # before the upload: a typo should not cost a clip's bytes
        body = await read_body(request, limits.max_bytes)
        if request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
            body, form_model = await from_multipart(request, body)
            model = model or form_model
        if not body:
            raise ApiError(400, "empty_body", "the body is empty; send the clip's bytes")
        served = pick(model)
        suffix = sniff_container(body)
        if suffix is None:
            raise ApiError(415, "not_a_video", "the upload is not a clip the server reads; send MP4, "
                                               "MOV, MKV, WebM, AVI or GIF")
        if suffix in (".mp4", ".mov") and (why := mp4_truncation(body)):
            raise ApiError(400, "truncated_video", f"the upload is a truncated {suffix[1:].upper()}: {why}; "
                                                   f"send the whole file")
        if waiting["n"] >= limits.max_waiting + 1:
            raise ApiError(503, "busy", f"{waiting['n']} clips are being translated or waiting; retry later",
                           headers={"Retry-After": "10"})
        waiting["n"] += 1
        try:
            async with slot:
                with tempfile.TemporaryDirectory(prefix="pix2pix-video-") as tmp:
                    src, dst = Path(tmp) / f"in{suffix}", Path(tmp) / "out" / f"out{suffix}"
                    src.write_bytes(body)
                    stats = await run_in_threadpool(_translate_file, served, queue.translator_for(served),
                                                    src, dst, limits, max_pixels, temporal, strength)
                    data = dst.read_bytes()
        finally:
            waiting["n"] -= 1
        return Response(data, media_type=MEDIA_TYPES[suffix], headers={
            "X-Model": served.name, "X-Frames": str(stats.frames), "X-Encoder": stats.encoder,
            "X-Seconds": f"{stats.seconds:.2f}",
            "X-Warping-Error": f"{stats.output_error.mean:.5f}",
            "X-Input-Warping-Error": f"{stats.input_error.mean:.5f}", "Cache-Control": "no-store"})
