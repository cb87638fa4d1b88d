"""Deployment: ONNX export with parity checks (onnx.py) and the in-browser studio as a
self-contained page (web.py) with ONNX Runtime Web fetched once into the cache (web_runtime.py)."""
