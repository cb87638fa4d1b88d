"""The studio without a server: ONNX Runtime Web fetched once (runtime.py), a model exported as a
self-contained page (export.py). The page itself is the served studio's (serve/static)."""
