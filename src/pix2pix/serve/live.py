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
  mode): both are translated alike, latest wins; the server counts them apart (``/health``).
- server -> client: ``{"seq": 7, "type": "edit", "model": "edges", "forward_ms": ..., "queue_ms": ...,
  "batch_size": 1, "server_ms": ..., "dropped": 2}\\n`` + the output PNG. ``dropped`` counts the
  client's messages superseded since the previous answer. An answer for ``seq`` means every
  message up to ``seq`` is done with.
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

from fastapi import FastAPI, WebSocket, WebSocketDisconnect

from .batcher import InferenceQueue, Result
from .errors import ApiError
from .models import ServedModel

log = logging.getLogger(__name__)

PATH = "/api/live"
MAX_HEADER = 4096  # bytes of the JSON line
TYPES = ("edit", "frame")  # a still edit, a video frame: translated alike, counted apart


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


@dataclass
class LiveStats:
    """What the socket has done since the server started (``/health`` shows it): messages
    translated by type, and messages dropped because a newer one arrived first."""

    edits: int = 0
    frames: int = 0
    dropped: int = 0


def add_live_route(app: FastAPI, *, pick: Callable[[Optional[str]], ServedModel], queue: InferenceQueue,
                   translate: Callable[[ServedModel, bytes], Awaitable[tuple[bytes, Result, int]]],
                   max_bytes: int) -> LiveStats:
    """Add the socket at ``PATH``; returns its counters (live, updated as messages are answered)."""
    stats = LiveStats()

    @app.websocket(PATH)
    async def live(ws: WebSocket) -> None:
        await ws.accept()
        latest: dict[str, Any] = {"data": None, "dropped": 0}
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
                    latest["data"] = data
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
                data, dropped = latest["data"], latest["dropped"]
                latest["data"], latest["dropped"] = None, 0
                if data is None:
                    continue
                stats.dropped += dropped
                await _answer(ws, data, dropped)
        except (WebSocketDisconnect, RuntimeError):  # the client went away mid-answer
            pass
        finally:
            reader.cancel()

    async def _answer(ws: WebSocket, data: bytes, dropped: int) -> None:
        t0 = time.perf_counter()
        seq = None
        try:
            if len(data) > max_bytes:
                raise ApiError(413, "too_large", f"the message is {len(data):,} bytes, over the "
                                                 f"{max_bytes:,} byte limit")
            header, body = parse_message(data)
            seq = header.get("seq")
            kind = message_type(header)
            served = pick(header.get("model") or None)
            with queue.admit():
                png, result, tile = await translate(served, body)
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
                "server_ms": round((time.perf_counter() - t0) * 1000, 2), "dropped": dropped, "tile": tile}
        await ws.send_bytes(json.dumps(head).encode() + b"\n" + png)

    return stats
