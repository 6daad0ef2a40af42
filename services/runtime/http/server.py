"""How uvicorn serves a service: the HTTP/1.1 protocol with a deadline on each request's
headers.

uvicorn closes a keep-alive connection that stays silent `timeout_keep_alive` seconds
after an answer (`http_idle_timeout_seconds`), but a connection that sends part of a
request's headers, or nothing, is kept open for ever: a few hundred such sockets hold a
service's file descriptors and memory. `guarded_protocol(seconds)` is uvicorn's h11
protocol with one more timer: from the moment a connection opens, or an answer is
complete, it has `seconds` to deliver the next request's complete headers, or it is
closed (`http_header_timeout_seconds`).
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from services.runtime.settings import ServiceSettings


class HeaderDeadlineProtocol(H11Protocol):
    """uvicorn's h11 protocol, closing a connection whose request headers are late."""

    header_timeout: float = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_deadline()
        super().connection_lost(exc)

    def handle_events(self) -> None:
        super().handle_events()
        if self.conn.their_state is not h11.IDLE:  # the request line and headers are in
            self._disarm_header_deadline()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm_header_deadline()

    def _arm_header_deadline(self) -> None:
        self._disarm_header_deadline()
        self._header_deadline = self.loop.call_later(self.header_timeout, self._headers_late)

    def _disarm_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_late(self) -> None:
        self._header_deadline = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()


def guarded_protocol(header_timeout: float) -> type[HeaderDeadlineProtocol]:
    """The protocol class to give uvicorn (`http=`), with this header deadline."""
    return type(
        "HeaderDeadlineProtocol", (HeaderDeadlineProtocol,), {"header_timeout": header_timeout}
    )


def server_options(settings: ServiceSettings) -> dict[str, Any]:
    """uvicorn's settings for a service: the header deadline and the idle timeout."""
    return {
        "http": guarded_protocol(settings.http_header_timeout_seconds),
        "timeout_keep_alive": settings.http_idle_timeout_seconds,
    }
