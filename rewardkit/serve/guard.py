"""What stands between the network and the routes: an ASGI middleware that authenticates
before anything is parsed, counts the body as it streams (a chunked upload gets no way past
the limit), and gives up on a client that stalls while sending it (`read_timeout_s` between two
pieces) or sends it too slowly (`body_timeout_s` for the whole body, however it trickles in).

Slow senders cannot crowd out fast ones: a body that arrives in one piece never waits, and at
most `max_pending_bodies` requests at a time may wait for the rest of theirs; one more gets 503
with Retry-After at once instead of holding a connection slot.

Auth: `Authorization: Bearer KEY` (the scheme in any case), compared in constant time. With a
key set every route needs it except `GET /health` (for load balancers); that includes `/docs`,
`/redoc` and `/openapi.json`, which describe the API.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import time

OPEN_PATHS = {"/health"}


class RequestGuard:
    def __init__(self, app, *, api_key: str | None, max_body_bytes: int, read_timeout_s: float,
                 body_timeout_s: float | None = None, max_pending_bodies: int = 256, retry_after_s: int = 1):
        self.app, self.api_key = app, api_key
        self.max_body_bytes, self.read_timeout_s = max_body_bytes, read_timeout_s
        self.body_timeout_s = body_timeout_s if body_timeout_s is not None else read_timeout_s
        self.max_pending_bodies, self.retry_after_s = max_pending_bodies, retry_after_s
        self.pending = 0  # requests now waiting for more of their body

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
        except _TooSlow as exc:
            return await _respond(send, 408, str(exc))
        except _Busy:
            return await _respond(send, 503, f"{self.max_pending_bodies} requests are already sending their bodies "
                                             "slowly; retry", {"retry-after": str(self.retry_after_s)})
        await self.app(scope, _replay(body, receive), send)

    def _authorized(self, headers: dict) -> bool:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), self.api_key.encode())

    async def _read_body(self, receive) -> bytes:
        chunks, size, waiting = [], 0, False
        deadline = time.monotonic() + self.body_timeout_s
        try:
            while True:
                left = deadline - time.monotonic()
                try:
                    message = await asyncio.wait_for(receive(), timeout=max(0.0, min(self.read_timeout_s, left)))
                except asyncio.TimeoutError:
                    if left <= self.read_timeout_s:
                        raise _TooSlow(f"the request body took more than {self.body_timeout_s:g} s in all") from None
                    raise _TooSlow(f"the request body stalled for more than {self.read_timeout_s:g} s") from None
                if message["type"] == "http.disconnect":
                    break
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > self.max_body_bytes:
                    raise _TooLarge()
                chunks.append(chunk)
                if not message.get("more_body", False):
                    break
                if not waiting:  # the body did not come in one piece: this request now waits for the rest
                    if self.pending >= self.max_pending_bodies:
                        raise _Busy()
                    self.pending, waiting = self.pending + 1, True
        finally:
            if waiting:
                self.pending -= 1
        return b"".join(chunks)


class _TooLarge(Exception):
    pass


class _TooSlow(Exception):
    pass


class _Busy(Exception):
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
