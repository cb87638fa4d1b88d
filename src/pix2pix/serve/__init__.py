"""`pix2pix serve`: the interactive studio and the REST API around Translator.

Needs the ``serve`` extra (FastAPI, uvicorn, python-multipart, fastapi-offline, websockets).
The REST API, the ``/api/live`` WebSocket and access tokens are documented in docs/serving.md::

    from pix2pix.serve import create_app, load_models
    app = create_app(load_models(["edges=runs/edges"]))   # then uvicorn.run(app, port=8000)
"""
from .app import create_app
from .batcher import InferenceQueue, Result
from .errors import ApiError
from .models import ServedModel, load_models
from .upload import Limits, decode_image, sniff_format

__all__ = ["create_app", "load_models", "ServedModel", "InferenceQueue", "Result", "ApiError",
           "Limits", "decode_image", "sniff_format"]
