"""The access token of a server shared beyond this machine, checked on every request.

Every HTTP route (the page, its scripts, the API, the docs, /health) and the WebSocket handshake
present the token one of three ways: ``Authorization: Bearer TOKEN`` (scripts, curl), ``?token=``
in the URL (the link `pix2pix serve` prints), or the cookie the server sets when a URL carried a
right token, so the studio opened from that link keeps working for every call it makes without
knowing the token. Compared in constant time (``hmac.compare_digest``), so the time of a refusal
says nothing about how much of a guess was right.
"""
from __future__ import annotations

import hmac
import logging
import re
from http.cookies import SimpleCookie
from typing import Optional
from urllib.parse import parse_qs

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket

log = logging.getLogger(__name__)

QUERY = "token"
# URL- and cookie-safe, as secrets.token_urlsafe makes them.
TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9._~-]{1,256}$")


def check_token(token: str) -> str:
    """``token`` if it can travel in a URL and a cookie unchanged, else ValueError."""
    if not TOKEN_PATTERN.match(token or ""):
        raise ValueError("an access token is 1 to 256 of the characters A-Z a-z 0-9 . _ ~ - (it travels "
                         "in URLs and cookies); omit --token to have one generated")
    return token


def cookie_name(port: Optional[int]) -> str:
    """Cookies are per host, not per port: two servers on one host each keep their own."""
    return f"pix2pix_token_{port}" if port else "pix2pix_token"


def _presented(scope: Scope, cookie: str) -> tuple[Optional[str], bool]:
    """(the token the request carries or None, whether it came in the URL)."""
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", ())}
    scheme, _, value = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip(), False
    query = parse_qs(scope.get("query_string", b"").decode("latin-1")).get(QUERY)
    if query:
        return query[-1], True
    jar = SimpleCookie()
    try:
        jar.load(headers.get("cookie", ""))
    except Exception:  # noqa: BLE001 - a malformed Cookie header is no token
        return None, False
    return (jar[cookie].value, False) if cookie in jar else (None, False)


class TokenGuard:
    """ASGI middleware: requests without the right token get 401 ``{"error", "detail"}``."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app, self.token = app, check_token(token).encode()

    def _refusal(self, presented: Optional[str]) -> JSONResponse:
        if presented is None:
            code, detail = "unauthorized", ("this server asks for an access token: open the link with "
                                            "?token= that `pix2pix serve` printed, or send the header "
                                            "'Authorization: Bearer TOKEN'")
        else:
            code, detail = "unauthorized", ("the access token is wrong; use the one `pix2pix serve` "
                                            "printed or was given with --token")
        return JSONResponse({"error": code, "detail": detail}, status_code=401,
                            headers={"WWW-Authenticate": 'Bearer realm="pix2pix"', "Cache-Control": "no-store"})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        port = (scope.get("server") or (None, None))[1]
        cookie = cookie_name(port)
        presented, in_url = _presented(scope, cookie)
        if presented is None or not hmac.compare_digest(presented.encode(), self.token):
            log.info("refused %s %s: %s token", scope["type"], scope.get("path"),
                     "no" if presented is None else "wrong")
            refusal = self._refusal(presented)
            if scope["type"] == "http":
                await refusal(scope, receive, send)
            elif "websocket.http.response" in scope.get("extensions", {}):
                await WebSocket(scope, receive, send).send_denial_response(refusal)
            else:  # a server without the denial extension: close the handshake (HTTP 403)
                await send({"type": "websocket.close", "code": 1008})
            return
        if not (in_url and scope["type"] == "http"):
            await self.app(scope, receive, send)
            return

        async def send_with_cookie(message: Message) -> None:
            # A right token in the URL: remember it, so the page's own requests carry it.
            if message["type"] == "http.response.start":
                value = f"{cookie}={presented}; Path=/; HttpOnly; SameSite=Strict"
                message = {**message, "headers": [*message.get("headers", []),
                                                  (b"set-cookie", value.encode("latin-1"))]}
            await send(message)

        await self.app(scope, receive, send_with_cookie)
