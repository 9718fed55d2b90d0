"""uvicorn's HTTP/1.1 protocol (httptools) sending each response head with its body.

uvicorn writes a response's status line and headers as soon as the app starts the
response, then the body in a second write. With ``TCP_NODELAY`` (asyncio's default) each
write is its own ``send`` and its own TCP segment, so a one-row answer costs two system
calls and wakes the client twice. Here the head is held until the first body write (or
the end of the response) and both leave in one ``send``. An app's body write follows its
head in the same loop pass (Starlette's ``Response`` sends both without yielding); a held
head that nothing joins by the end of that pass is sent then. Only heads with a
``content-length`` are held: a streamed (chunked) response's head goes out at once.

Nothing else changes: a held head is always written before anything else on the
connection, at the latest when the response completes or the connection closes; an
interim (1xx) response, such as ``100 Continue`` or a WebSocket upgrade's ``101``, is never
held.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

HEAD_START = b"HTTP/1.1 "
HEAD_END = b"\r\n\r\n"
# only a head announcing its body's length is held: that body comes in the next write;
# a streamed (chunked) one may not come for a while, and its head must not wait for it
SIZED = b"\r\ncontent-length: "  # uvicorn writes header names in lower case
INTERIM = b"HTTP/1.1 1"  # 1xx: 100 Continue, 101 Switching Protocols, 103 Early Hints
JOIN_MAX_BYTES = 256 * 1024  # above this a body goes in its own write, not copied


class HeadJoiningTransport:
    """A transport proxy that holds one response head until the next write."""

    def __init__(
        self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop | None = None
    ) -> None:
        self._transport = transport
        self._loop = loop  # with a loop, a held head waits one loop pass at most
        self._head = b""
        self._expect_head = True  # the next response's head is the next write

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._head:
            head, self._head = self._head, b""
            if len(data) <= JOIN_MAX_BYTES:
                self._transport.write(head + bytes(data))
                return
            self._transport.write(head)
        elif (
            self._expect_head
            and isinstance(data, bytes)
            and data.startswith(HEAD_START)
            and data.endswith(HEAD_END)
            and not data.startswith(INTERIM)
            and SIZED in data
        ):
            self._head, self._expect_head = data, False
            if self._loop is not None:
                # an app that starts a response and writes the body later (after awaiting
                # something, or before reading a 100-continue body) must not delay it
                self._loop.call_soon(self.flush)
            return
        self._transport.write(data)

    def response_done(self) -> None:
        """Write a head still held (a response with no body write) and expect the next."""
        self.flush()
        self._expect_head = True

    def flush(self) -> None:
        if self._head:
            head, self._head = self._head, b""
            self._transport.write(head)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class HeadJoiningProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` on a :class:`HeadJoiningTransport`."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have its methods
        joined = HeadJoiningTransport(cast(asyncio.Transport, transport), self.loop)
        super().connection_made(cast(asyncio.Transport, joined))

    def on_response_complete(self) -> None:
        transport = self.transport
        if isinstance(transport, HeadJoiningTransport):
            transport.response_done()
        super().on_response_complete()
