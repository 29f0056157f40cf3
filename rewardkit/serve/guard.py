"""What stands between the network and the routes: an ASGI middleware that authenticates
before anything is parsed, counts the body as it streams (a chunked upload gets no way past
the limit), and gives up on a client that stalls while sending it.

Auth: `Authorization: Bearer KEY` (the scheme in any case), compared in constant time. With a
key set every route needs it except `GET /health` (for load balancers); that includes `/docs`,
`/redoc` and `/openapi.json`, which describe the API.
"""

from __future__ import annotations

import asyncio
import hmac
import json

OPEN_PATHS = {"/health"}


class RequestGuard:
    def __init__(self, app, *, api_key: str | None, max_body_bytes: int, read_timeout_s: float):
        self.app, self.api_key = app, api_key
        self.max_body_bytes, self.read_timeout_s = max_body_bytes, read_timeout_s

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if self.api_key is not None and scope["path"] not in OPEN_PATHS and not self._authorized(headers):
            return await _respond(send, 401, "missing or wrong bearer token", {"www-authenticate": "Bearer"})
        declared = headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body_bytes):
            return await _respond(send, 413, f"request body of {declared} bytes exceeds the "
                                             f"{self.max_body_bytes}-byte limit")
        try:
            body = await self._read_body(receive)
        except _TooLarge:
            return await _respond(send, 413, f"request body exceeds the {self.max_body_bytes}-byte limit")
        except asyncio.TimeoutError:
            return await _respond(send, 408, f"the request body stalled for more than {self.read_timeout_s:g} s")
        await self.app(scope, _replay(body, receive), send)

    def _authorized(self, headers: dict) -> bool:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), self.api_key.encode())

    async def _read_body(self, receive) -> bytes:
        chunks, size = [], 0
        while True:
            message = await asyncio.wait_for(receive(), timeout=self.read_timeout_s)
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise _TooLarge()
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)


class _TooLarge(Exception):
    pass


def _replay(body: bytes, receive):
    sent = False

    async def replayed():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # after the body: disconnect notices

    return replayed


async def _respond(send, status: int, error: str, headers: dict | None = None) -> None:
    payload = json.dumps({"error": error}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    raw += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": payload})
