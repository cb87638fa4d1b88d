"""The FastAPI application: the studio page, the REST API and its OpenAPI docs, all offline.

Request path of ``POST /api/translate`` (and of each edit on the ``/api/live`` WebSocket): the
body is read with a byte limit (on the event loop, which only moves bytes), decoded and prepared in
the thread pool, translated on the inference worker (batcher.py), and encoded to PNG in the thread
pool, so the event loop stays free for other clients, the page and ``/health`` however busy the
model is. An image large enough for the one tiling rule (``inference.tiling.auto_tile``, as
`pix2pix translate` uses) is translated tile by tile, each tile's forward pass on the same worker.

With an access token (``create_app(token=...)``, auth.py) every route, the page and the WebSocket
answer 401 without it.
"""
from __future__ import annotations

import io
import logging
import time
import uuid
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Optional, Sequence

import numpy as np
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import __version__
from ..inference.description import ModelDescription
from ..inference.tiling import auto_tile
from ..util.imageio import array_to_pil
from .auth import TokenGuard
from .batcher import InferenceQueue, Result
from .errors import ApiError
from .live import add_live_route
from .models import ServedModel
from .upload import ACCEPTED, Limits, decode_image
from .examples import add_examples_routes
from .video import VideoLimits, add_video_route

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
# The studio loads nothing from anywhere but this server; the browser enforces it. Its in-browser
# mode runs ONNX Runtime Web in a blob: worker that imports a blob: module and compiles WebAssembly.
PAGE_POLICY = ("default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; connect-src 'self'; "
               "script-src 'self' blob: 'wasm-unsafe-eval'; worker-src 'self' blob:; "
               "object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
# Cross-origin isolation gives the page SharedArrayBuffer, hence WebAssembly threads in browser mode.
ISOLATION = {"Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Embedder-Policy": "require-corp"}
_RUNTIME_TYPES = {".mjs": "text/javascript", ".wasm": "application/wasm", ".json": "application/json"}
# The codes of the routing errors Starlette raises itself (no such path, a method the path does not take).
_ROUTING_CODES = {404: "not_found", 405: "method_not_allowed"}


class ErrorBody(BaseModel):
    error: str
    detail: str


# The schema of a model's entry is the one ModelDescription (the web export's config.json too).
ModelInfo = ModelDescription


class ModelList(BaseModel):
    models: list[ModelDescription]
    # The in-browser mode's runtime: its version and, per flavour, the bundle and .wasm it loads
    # from /runtime/ (the page keeps no copy of these names).
    onnxruntime_web: str
    flavours: dict[str, list[str]]


class Health(BaseModel):
    status: str
    models: list[str]
    pending: int
    batches: int
    images: int
    # The /api/live socket since start: still edits and video frames translated, and messages
    # dropped unanswered because a newer one from the same client arrived first (latest wins).
    live_edits: int = 0
    live_frames: int = 0
    live_dropped: int = 0


_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": text} for status, text in {
        400: "empty body, truncated or corrupt image, malformed multipart",
        404: "unknown model name",
        413: "upload over the byte limit, or image over the pixel limit",
        415: "not an image format the server reads (checked by content)",
        500: "an unexpected server error (the detail names a log reference, never internals)",
        503: "too many translations in progress, or the server is shutting down; retry after "
             "the Retry-After seconds",
    }.items()}

_TRANSLATE_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {"schema": {
            "type": "object", "required": ["image"],
            "properties": {"image": {"type": "string", "format": "binary",
                                     "description": f"the input image ({ACCEPTED})"},
                           "model": {"type": "string", "description": "model name (or ?model=)"}}}},
        "image/png": {"schema": {"type": "string", "format": "binary"}},
        "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
    },
}


async def _read_body(request: Request, max_bytes: int) -> bytes:
    """The whole body, refusing (413) as soon as it is known to be over ``max_bytes``: from
    Content-Length before reading anything, else while the chunks arrive."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise ApiError(413, "too_large", f"the upload is {int(declared):,} bytes, over the "
                                         f"{max_bytes:,} byte limit")
    chunks, total = [], 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > max_bytes:
            raise ApiError(413, "too_large", f"the upload is over the {max_bytes:,} byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


async def _from_multipart(request: Request, body: bytes) -> tuple[bytes, Optional[str]]:
    """(image bytes, ``model`` field or None) from a multipart body already read into memory."""

    async def replay() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        form = await Request(request.scope, replay).form(max_files=4, max_fields=16)
    except Exception as e:  # noqa: BLE001 - any parse failure is the body's fault
        raise ApiError(400, "bad_multipart", f"the multipart body cannot be parsed ({e})") from None
    try:
        files = [v for _, v in form.multi_items() if isinstance(v, UploadFile)]
        chosen = form.get("image") if isinstance(form.get("image"), UploadFile) else None
        chosen = chosen or (files[0] if files else None)
        if chosen is None:
            raise ApiError(400, "no_image_field", "the multipart body has no file; send the image as "
                                                  "a file field named 'image'")
        model = form.get("model")
        return await chosen.read(), model if isinstance(model, str) and model else None
    finally:
        await form.close()


class HeadAsGet:
    """Answers ``HEAD`` as ``GET`` without the body. HTTP asks it of every server (RFC 9110 9.3.2)
    and uptime checks and load balancers send it, but FastAPI routes ``GET`` only (405 else)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        # The server keeps its own scope (HEAD), so it too knows to send no body after the headers.
        await self.app({**scope, "method": "GET"}, receive, headers_only)


def _routing_detail(request: Request, exc: StarletteHTTPException) -> str:
    """What a routing error tells a person: the path or method that does not exist, and where to look."""
    if exc.status_code == 404:
        return f"no such path: {request.url.path}; the API's routes are listed at /docs"
    if exc.status_code == 405:
        allowed = (exc.headers or {}).get("Allow", "another method")
        return f"{request.url.path} takes {allowed}, not {request.method}; see /docs"
    return str(exc.detail)


def _encode_png(arr: np.ndarray) -> bytes:
    """(H, W, C) in [0, 1], C in 1..4 -> 8-bit PNG bytes (gray, gray+alpha, RGB or RGBA)."""
    image = array_to_pil(arr)
    buf = io.BytesIO()
    # Level 1: a few times faster than the default for a slightly larger file, and lossless alike.
    image.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def create_app(models: Sequence[ServedModel], *, limits: Limits = Limits(), max_batch: int = 4,
               max_pending: int = 64, video_limits: Optional[VideoLimits] = None,
               tile: Optional[int] = None, token: Optional[str] = None) -> FastAPI:
    """The application for ``models`` (the first is the default). Starts its inference worker on
    startup and drains it on shutdown (run it under uvicorn or any ASGI server).

    ``tile``: as `pix2pix translate --tile` for large uploads (None: the automatic rule; 0: never).
    ``token``: the access token every request must carry (None: none asked, for loopback)."""
    if not models:
        raise ValueError("create_app needs at least one model")
    by_name = {m.name: m for m in models}
    if len(by_name) != len(models):
        raise ValueError(f"model names must be unique, got {[m.name for m in models]}")
    if tile:
        from ..inference.tiling import check_tiling

        for m in models:  # refused at start, not on the first large upload
            check_tiling(tile, tile // 4, m.multiple)
    queue = InferenceQueue(max_batch=max_batch, max_pending=max_pending)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        queue.start()
        try:
            yield
        finally:
            queue.stop()

    app = FastAPIOffline(
        title="pix2pix", version=__version__, lifespan=lifespan,
        description="Image-to-image translation with pix2pix generators. The studio is at `/`.")
    app.state.queue, app.state.models, app.state.limits = queue, by_name, limits
    if token is not None:
        app.add_middleware(TokenGuard, token=token)
    app.add_middleware(HeadAsGet)  # outermost: a HEAD is a GET to the token check and the routes

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse({"error": exc.code, "detail": exc.message}, status_code=exc.status,
                            headers=exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def routing_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # Starlette's own 404 and 405 answer {"detail"} only; every error of this API is {"error", "detail"}.
        return JSONResponse({"error": _ROUTING_CODES.get(exc.status_code, "http_error"),
                             "detail": _routing_detail(request, exc)},
                            status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def bad_parameter(request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's own 422 body has another shape; every error of this API is {"error", "detail"}.
        problems = "; ".join(f"{'.'.join(str(x) for x in e.get('loc', ()))}: {e.get('msg', 'invalid')} "
                             f"(got {e.get('input')!r})" for e in exc.errors())
        return JSONResponse({"error": "bad_parameter", "detail": problems or "invalid request"},
                            status_code=400)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        # The details stay in the server's log: exception text can reveal paths and internals.
        ref = uuid.uuid4().hex[:12]
        log.exception("unexpected error %s on %s %s", ref, request.method, request.url.path)
        return JSONResponse({"error": "internal", "detail": f"the server failed on this request; its "
                                                            f"log has the details under {ref}"},
                            status_code=500)

    async def translate_image(served: ServedModel, decode: Callable[[], np.ndarray],
                              encode: Callable[[np.ndarray], bytes],
                              timing: Optional[dict[str, float]] = None) -> tuple[bytes, Result, int]:
        """``decode()`` ((H, W, C) in [0, 1]) -> (``encode`` of its translation, how it was made,
        the tile size or 0). ``timing`` (when given) gets the server-side milliseconds of each
        step: decode (and prepare), queue, forward, encode: where a request's time goes."""
        def prepare() -> tuple:
            t = time.perf_counter()
            arr = decode()
            use = auto_tile(arr.shape[0], arr.shape[1], tile, device=served.translator.device)
            out = (arr, None, use) if use else (*served.translator.prepare(arr), 0)
            return (*out, (time.perf_counter() - t) * 1000)

        x, alpha, use_tile, decode_ms = await run_in_threadpool(prepare)
        if use_tile:  # tile by tile, each tile's forward pass on the worker between other batches
            start = time.perf_counter()
            out = await run_in_threadpool(
                lambda: queue.translator_for(served).translate_array(x, tile=use_tile))
            result = Result(out, 0.0, (time.perf_counter() - start) * 1000, 1)
        else:
            result = await queue.translate(served, x, alpha)
        del x
        t = time.perf_counter()
        data = await run_in_threadpool(encode, result.array)
        if timing is not None:
            timing.update(decode_ms=decode_ms, queue_ms=result.queue_ms, forward_ms=result.forward_ms,
                          encode_ms=(time.perf_counter() - t) * 1000)
        return data, result, use_tile

    async def translate_body(served: ServedModel, body: bytes) -> tuple[bytes, Result, int]:
        """An uploaded image -> (its translation as PNG, how it was made, the tile size or 0)."""
        return await translate_image(served, lambda: decode_image(body, limits, served.multiple), _encode_png)

    def pick(name: Optional[str]) -> ServedModel:
        if not name:  # left out, or empty (``?model=``, as an empty form field): the first model
            return models[0]
        if name not in by_name:
            raise ApiError(404, "unknown_model", f"no model named {name!r}; this server has "
                                                 f"{', '.join(repr(n) for n in by_name)}")
        return by_name[name]

    @app.get("/", include_in_schema=False)
    async def studio() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Content-Security-Policy": PAGE_POLICY,
                                                            "Cache-Control": "no-cache", **ISOLATION})

    @app.get("/runtime/{name}", include_in_schema=False)
    async def runtime_file(name: str) -> FileResponse:
        """ONNX Runtime Web for the studio's in-browser mode (fetched once into the cache)."""
        from ..export.web_runtime import FILES, RuntimeUnavailable, runtime_dir

        if name not in FILES:
            raise ApiError(404, "not_found", f"no runtime file {name!r}")
        try:
            folder = await run_in_threadpool(runtime_dir)
        except RuntimeUnavailable as e:
            raise ApiError(503, "runtime_unavailable", str(e)) from None
        return FileResponse(folder / name, media_type=_RUNTIME_TYPES[Path(name).suffix],
                            headers={"Cache-Control": "max-age=86400"})

    @app.get("/api/models/{name}/model.onnx", include_in_schema=False)
    async def model_onnx(name: str) -> FileResponse:
        """The model as fp32 ONNX, for the studio's in-browser mode (exported once, cached)."""
        served = pick(name)
        path = await run_in_threadpool(served.onnx_file)
        return FileResponse(path, media_type="application/octet-stream")

    add_examples_routes(app, pick=pick)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/health", response_model=Health, summary="Liveness and queue depth")
    async def health() -> Health:
        return Health(status="ok", models=list(by_name), pending=queue.pending,
                      batches=queue.batches, images=queue.images, live_edits=live.edits,
                      live_frames=live.frames, live_dropped=live.dropped)

    @app.get("/api/models", response_model=ModelList, summary="The loaded models")
    async def list_models() -> ModelList:
        """Names (the first is the default), architectures, sizes, directions and palettes
        (for label-map models: the [r, g, b] colours of their training inputs), and the files of
        ONNX Runtime Web the studio's in-browser mode loads from `/runtime/`."""
        from ..export.web_runtime import runtime_config

        return ModelList(models=[m.describe() for m in models], **runtime_config())

    @app.post("/api/translate", response_class=Response, summary="Translate one image",
              openapi_extra={"requestBody": _TRANSLATE_BODY},
              responses={200: {"content": {"image/png": {}}, "description": "the output as PNG"},
                         **_ERRORS})
    async def translate(request: Request, model: Optional[str] = Query(
            None, description="model name from /api/models; default: the first")) -> Response:
        """Send an image as the raw body or as multipart field `image`, get the translation back
        as PNG, the same size. Any size is accepted up to the limits (padded to the network's
        multiple and cropped back). The format is recognised from the content.

        Response headers: `X-Model`, `X-Batch-Size`, `X-Queue-Ms`, `X-Forward-Ms` (the forward
        pass of the batch), and `Server-Timing`."""
        t0 = time.perf_counter()
        with queue.admit():  # 503 before a byte of the body is read when the server is full
            body = await _read_body(request, limits.max_bytes)
            if request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
                body, form_model = await _from_multipart(request, body)
                model = model or form_model
            served = pick(model)
            png, result, used_tile = await translate_body(served, body)
            del body
        total_ms = (time.perf_counter() - t0) * 1000
        return Response(png, media_type="image/png", headers={
            "X-Model": served.name,
            "X-Batch-Size": str(result.batch_size),
            "X-Queue-Ms": f"{result.queue_ms:.1f}",
            "X-Forward-Ms": f"{result.forward_ms:.1f}",
            "Server-Timing": (f"queue;dur={result.queue_ms:.1f}, forward;dur={result.forward_ms:.1f}, "
                              f"total;dur={total_ms:.1f}"),
            "Cache-Control": "no-store",
            **({"X-Tile": str(used_tile)} if used_tile else {}),
        })

    live = add_live_route(app, pick=pick, queue=queue, translate=translate_image, limits=limits,
                          encode_png=_encode_png)
    add_video_route(app, pick=pick, read_body=_read_body, from_multipart=_from_multipart,
                    limits=video_limits or VideoLimits(), max_pixels=limits.max_pixels, queue=queue)
    return app
