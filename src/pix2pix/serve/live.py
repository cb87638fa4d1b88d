"""``/api/live``: a WebSocket that streams a client's edits in and pushes translations out.

The studio's edits arrive faster than a model translates while someone draws. Over one persistent
connection there is no request to set up per edit, and the server keeps only the *latest* edit a
client sent: when the previous translation finishes it takes that one, and every edit that was
superseded meanwhile is dropped unanswered (latest wins). So stroke-to-output is one forward pass
plus the transfer, never a queue of stale edits. Each translation goes through the same
inference queue as ``POST /api/translate`` (batched with it, one forward pass at a time).

Messages (binary frames, both ways): one line of JSON, a newline, then the image bytes.

- client -> server: ``{"seq": 7, "model": "edges", "type": "edit"}\\n`` + the image (PNG, JPEG,
  ... as for ``POST /api/translate``); ``model`` may be left out (the default model). ``type`` is
  ``"edit"`` (a still edit, the default) or ``"frame"`` (a video frame of the studio's Video
  mode): both are translated alike, latest wins; the server counts them apart (``/health``). With
  ``"rgba": [W, H]`` in the header the image is W x H raw RGBA bytes (W * H * 4, row by row)
  instead of a file: the studio sends its canvas as it is, so neither side encodes nor decodes a
  PNG per edit. With ``"reply": "rgba"`` the answer's image is raw RGBA too (else PNG).
- server -> client: ``{"seq": 7, "type": "edit", "model": "edges", "forward_ms": ..., "queue_ms": ...,
  "batch_size": 1, "server_ms": ..., "dropped": 2, "timing": {...}}\\n`` + the output PNG (or, when
  asked with ``"reply": "rgba"``, ``"rgba": [W, H]`` and the output's raw RGBA bytes).
  ``server_ms`` runs from the message's arrival to its answer's sending. ``dropped`` counts the
  client's messages superseded since the previous answer. An answer for ``seq`` means every
  message up to ``seq`` is done with. ``timing``: where the message's ``server_ms`` went, in ms:
  ``wait`` (arrived while the previous one was being answered), ``decode`` (and prepare),
  ``queue``, ``forward``, ``encode``.
- errors: a text frame ``{"seq": 7, "error": CODE, "detail": TEXT}`` (the REST API's codes and
  shape, plus the edit's seq); the connection stays open.
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Optional

import numpy as np
from fastapi import FastAPI, WebSocket, WebSocketDisconnect

from .batcher import InferenceQueue, Result
from .errors import ApiError
from .models import ServedModel
from .upload import Limits, decode_image

Translate = Callable[[ServedModel, Callable[[], np.ndarray], Callable[[np.ndarray], bytes], dict],
                     Awaitable[tuple[bytes, Result, int]]]

log = logging.getLogger(__name__)

PATH = "/api/live"
MAX_HEADER = 4096  # bytes of the JSON line
TYPES = ("edit", "frame")  # a still edit, a video frame: translated alike, counted apart
REPLIES = ("png", "rgba")  # the answer's image: a PNG file (the default), or raw RGBA bytes


def parse_message(data: bytes) -> tuple[dict[str, Any], bytes]:
    """(header, image bytes) of a client's binary frame; ApiError 400 when malformed."""
    head, sep, body = data.partition(b"\n")
    if not sep or len(head) > MAX_HEADER:
        raise ApiError(400, "bad_message", "a message is one line of JSON ({\"seq\": N, \"model\": NAME}), "
                                           "a newline, then the image bytes")
    try:
        header = json.loads(head)
    except ValueError as e:
        raise ApiError(400, "bad_message", f"the message's first line is not JSON ({e})") from None
    if not isinstance(header, dict) or not isinstance(header.get("seq", 0), int) \
            or not isinstance(header.get("model") or "", str):
        raise ApiError(400, "bad_message", f"the header must be {{\"seq\": integer, \"model\": name}}, "
                                           f"got {head[:200]!r}")
    return header, body


def message_type(header: dict[str, Any]) -> str:
    """The header's ``type`` (default ``"edit"``); ApiError 400 when it is not one of TYPES."""
    kind = header.get("type", "edit")
    if kind not in TYPES:
        raise ApiError(400, "bad_message", f"the header's type must be one of {', '.join(map(repr, TYPES))}, "
                                           f"got {kind!r}")
    return kind


def reply_format(header: dict[str, Any]) -> str:
    """The header's ``reply`` (default ``"png"``); ApiError 400 when it is not one of REPLIES: a
    client that asked for raw RGBA with a typo would otherwise read a PNG file as pixels."""
    reply = header.get("reply", "png")
    if reply not in REPLIES:
        raise ApiError(400, "bad_message", f"the header's reply must be one of {', '.join(map(repr, REPLIES))}, "
                                           f"got {reply!r}")
    return reply


@dataclass
class LiveStats:
    """What the socket has done since the server started (``/health`` shows it): messages
    translated by type, and messages dropped because a newer one arrived first."""

    edits: int = 0
    frames: int = 0
    dropped: int = 0


def rgba_size(header: dict[str, Any], body: bytes, limits: Limits, multiple: int) -> tuple[int, int]:
    """(W, H) of a raw-RGBA edit (``"rgba": [W, H]`` in its header); ApiError 400 when the header
    or the byte count is wrong, 413 over the pixel limit."""
    size = header.get("rgba")
    if not (isinstance(size, list) and len(size) == 2 and all(type(v) is int and v > 0 for v in size)):
        raise ApiError(400, "bad_message", f"\"rgba\" must be [width, height] in pixels, got {size!r}")
    w, h = size
    padded = (-(-w // multiple) * multiple) * (-(-h // multiple) * multiple)
    if padded > limits.max_pixels:
        raise ApiError(413, "too_many_pixels", f"the canvas is {w}x{h} pixels, over the server's "
                                               f"{limits.max_pixels:,} pixel limit; send a smaller "
                                               f"canvas, or start the server with a larger --max-pixels")
    if len(body) != w * h * 4:
        raise ApiError(400, "bad_message", f"a {w}x{h} RGBA edit is {w * h * 4:,} bytes after the "
                                           f"header line, got {len(body):,}")
    return w, h


def rgba_array(body: bytes, w: int, h: int) -> np.ndarray:
    """Raw RGBA bytes -> (H, W, 4) float32 in [0, 1], as a decoded RGBA PNG of them would be."""
    return np.frombuffer(body, np.uint8).reshape(h, w, 4).astype(np.float32) / np.float32(255.0)


def rgba_bytes(arr: np.ndarray) -> bytes:
    """(H, W, C) in [0, 1], C in 1..4 -> raw RGBA bytes, rounded as the PNG answers are (opaque
    where there is no alpha; gray to R = G = B)."""
    data = (np.clip(arr, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    c = data.shape[2]
    rgb = np.repeat(data[:, :, :1], 3, axis=2) if c <= 2 else data[:, :, :3]
    alpha = data[:, :, c - 1:] if c in (2, 4) else np.full(data.shape[:2] + (1,), 255, np.uint8)
    return np.concatenate([rgb, alpha], axis=2).tobytes()


def add_live_route(app: FastAPI, *, pick: Callable[[Optional[str]], ServedModel], queue: InferenceQueue,
                   translate: Translate, limits: Limits,
                   encode_png: Callable[[np.ndarray], bytes]) -> LiveStats:
    """Add the socket at ``PATH``; returns its counters (live, updated as messages are answered)."""
    stats = LiveStats()
    max_bytes = limits.max_bytes

    @app.websocket(PATH)
    async def live(ws: WebSocket) -> None:
        await ws.accept()
        latest: dict[str, Any] = {"data": None, "dropped": 0, "t": 0.0}
        arrived = asyncio.Event()
        gone = asyncio.Event()

        async def receive() -> None:
            try:
                while True:
                    message = await ws.receive()
                    if message["type"] == "websocket.disconnect":
                        return
                    data = message.get("bytes")
                    if data is None:
                        data = b""  # a text frame: answered as a bad message below
                    if latest["data"] is not None:
                        latest["dropped"] += 1  # superseded before its turn: latest wins
                    latest["data"], latest["t"] = data, time.perf_counter()
                    arrived.set()
            finally:
                gone.set()
                arrived.set()

        reader = asyncio.create_task(receive())
        try:
            while True:
                await arrived.wait()
                arrived.clear()
                if gone.is_set():
                    return
                data, dropped, received = latest["data"], latest["dropped"], latest["t"]
                latest["data"], latest["dropped"] = None, 0
                if data is None:
                    continue
                stats.dropped += dropped
                await _answer(ws, data, dropped, received)
        except (WebSocketDisconnect, RuntimeError):  # the client went away mid-answer
            pass
        finally:
            reader.cancel()

    async def _answer(ws: WebSocket, data: bytes, dropped: int, received: float) -> None:
        t0 = time.perf_counter()
        seq, reply_raw, timing = None, False, {"wait_ms": (t0 - received) * 1000}
        try:
            if len(data) > max_bytes:
                raise ApiError(413, "too_large", f"the message is {len(data):,} bytes, over the "
                                                 f"{max_bytes:,} byte limit")
            header, body = parse_message(data)
            seq = header.get("seq")
            kind = message_type(header)
            served = pick(header.get("model") or None)
            if "rgba" in header:
                size = rgba_size(header, body, limits, served.multiple)
                decode = lambda: rgba_array(body, *size)  # noqa: E731
            else:
                decode = lambda: decode_image(body, limits, served.multiple)  # noqa: E731
            reply_raw = reply_format(header) == "rgba"
            encode = rgba_bytes if reply_raw else encode_png
            with queue.admit():
                out, result, tile = await translate(served, decode, encode, timing)
        except ApiError as e:
            await ws.send_text(json.dumps({"seq": seq, "error": e.code, "detail": e.message}))
            return
        except Exception:  # noqa: BLE001 - as the REST API: details in the log, a reference to the client
            import uuid

            ref = uuid.uuid4().hex[:12]
            log.exception("unexpected error %s on %s", ref, PATH)
            await ws.send_text(json.dumps({"seq": seq, "error": "internal", "detail": "the server failed "
                                           f"on this edit; its log has the details under {ref}"}))
            return
        if kind == "frame":
            stats.frames += 1
        else:
            stats.edits += 1
        head = {"seq": seq, "type": kind, "model": served.name, "forward_ms": round(result.forward_ms, 2),
                "queue_ms": round(result.queue_ms, 2), "batch_size": result.batch_size,
                "server_ms": round((time.perf_counter() - received) * 1000, 2), "dropped": dropped, "tile": tile,
                "timing": {k.removesuffix("_ms"): round(v, 2) for k, v in timing.items()}}
        if reply_raw:
            head["rgba"] = [result.array.shape[1], result.array.shape[0]]
        await ws.send_bytes(json.dumps(head).encode() + b"\n" + out)

    return stats
