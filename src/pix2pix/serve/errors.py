"""The one error type the API answers with: an HTTP status, a short code and a message for people."""
from __future__ import annotations


class ApiError(Exception):
    """A request the server cannot serve, answered as JSON ``{"error": code, "detail": message}``.

    ``code`` is stable for programs (``empty_body``, ``unsupported_format``, ``corrupt_image``,
    ``too_large``, ``too_many_pixels``, ``unknown_model``, ...); ``message`` says what was wrong with
    the request and what to send instead.
    """

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}
