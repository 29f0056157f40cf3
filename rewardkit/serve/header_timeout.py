"""A uvicorn HTTP protocol that closes a connection whose request headers do not arrive in time.

uvicorn (0.54, h11) starts no timer until a request's headers are complete, so a client that
opens a connection and sends half a header holds it for as long as it likes. This protocol
arms a timer whenever the connection waits for a request's headers (on connect, and when
bytes of a next request arrive on a kept-alive connection) and disarms it once uvicorn has
parsed them; if it fires first, the connection is closed.
"""

from __future__ import annotations

from uvicorn.protocols.http.h11_impl import H11Protocol


def header_timeout_protocol(seconds: float) -> type:
    """An H11Protocol subclass with a header timeout of `seconds`, for uvicorn's `http=`."""

    class HeaderTimeoutH11Protocol(H11Protocol):
        header_timeout_s = seconds

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self._header_timer = None
            self._arm()

        def data_received(self, data: bytes) -> None:
            if self._waiting_for_headers():
                self._arm()
            super().data_received(data)
            if not self._waiting_for_headers():
                self._disarm()

        def connection_lost(self, exc) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _waiting_for_headers(self) -> bool:
            return self.cycle is None or self.cycle.response_complete

        def _arm(self) -> None:
            if self._header_timer is None:
                self._header_timer = self.loop.call_later(self.header_timeout_s, self._expire)

        def _disarm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _expire(self) -> None:
            self._header_timer = None
            if self._waiting_for_headers() and not self.transport.is_closing():
                self.transport.close()

    return HeaderTimeoutH11Protocol
