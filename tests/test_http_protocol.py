"""The response head is sent with its body: unit checks on the transport proxy, and a real
uvicorn server on that protocol answering over a socket."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from server import uvicorn_in_thread

from predictor.http_protocol import JOIN_MAX_BYTES, HeadJoiningProtocol, HeadJoiningTransport

HEAD = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n"


class Recorder(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return "extra:" + name


def test_a_head_and_its_body_leave_in_one_write() -> None:
    real = Recorder()
    proxy = HeadJoiningTransport(real)
    proxy.write(HEAD)
    assert real.writes == []
    proxy.write(b"ok")
    assert real.writes == [HEAD + b"ok"]
    proxy.response_done()
    proxy.write(HEAD)
    proxy.write(b"no")
    assert real.writes == [HEAD + b"ok", HEAD + b"no"]


def test_a_head_without_a_body_write_goes_when_the_response_is_done() -> None:
    real = Recorder()
    proxy = HeadJoiningTransport(real)
    proxy.write(HEAD)
    proxy.response_done()  # e.g. HEAD requests: uvicorn writes no body
    assert real.writes == [HEAD]


def test_close_writes_a_held_head_first() -> None:
    real = Recorder()
    proxy = HeadJoiningTransport(real)
    proxy.write(HEAD)
    proxy.close()
    assert real.writes == [HEAD]
    assert real.closed


def test_only_a_response_head_is_held() -> None:
    real = Recorder()
    proxy = HeadJoiningTransport(real)
    proxy.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # the client waits for it: never held
    upgrade = b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n\r\n"
    proxy.write(upgrade)  # no body follows a 101: holding it would stall the handshake
    assert real.writes == [b"HTTP/1.1 100 Continue\r\n\r\n", upgrade]
    proxy.write(HEAD)
    body = b"HTTP/1.1 200 OK\r\n\r\n"  # a body that looks like a head is not held
    proxy.write(body)
    proxy.write(body)
    assert real.writes[2:] == [HEAD + body, body]


def test_a_held_head_waits_one_loop_pass_at_most() -> None:
    async def main() -> list[bytes]:
        real = Recorder()
        proxy = HeadJoiningTransport(real, asyncio.get_running_loop())
        proxy.write(HEAD)  # and no body in this pass
        assert real.writes == []
        await asyncio.sleep(0)
        return real.writes

    assert asyncio.run(main()) == [HEAD]


def test_a_body_in_the_same_loop_pass_still_joins_its_head() -> None:
    async def main() -> list[bytes]:
        real = Recorder()
        proxy = HeadJoiningTransport(real, asyncio.get_running_loop())
        proxy.write(HEAD)
        proxy.write(b"ok")
        await asyncio.sleep(0)  # the end-of-pass flush finds nothing held
        return real.writes

    assert asyncio.run(main()) == [HEAD + b"ok"]


def test_a_streamed_response_head_goes_out_at_once() -> None:
    real = Recorder()
    proxy = HeadJoiningTransport(real)
    chunked = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
    proxy.write(chunked)  # its first chunk may come much later (server-sent events)
    assert real.writes == [chunked]


def test_a_big_body_is_not_copied_to_join_its_head() -> None:
    real = Recorder()
    proxy = HeadJoiningTransport(real)
    proxy.write(HEAD)
    big = b"x" * (JOIN_MAX_BYTES + 1)
    proxy.write(big)
    assert real.writes == [HEAD, big]


def test_everything_else_is_the_real_transport() -> None:
    proxy = HeadJoiningTransport(Recorder())
    assert proxy.get_extra_info("peername") == "extra:peername"


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "websocket":  # accept, wait for the client to speak, answer
        await receive()
        await send({"type": "websocket.accept"})
        message = await receive()
        await send({"type": "websocket.send", "text": "hello " + message.get("text", "")})
        await send({"type": "websocket.close"})
        return
    if scope["type"] != "http":
        return
    if scope["path"] == "/early":  # a sized head before the body is read
        headers = [(b"content-length", b"2")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await asyncio.sleep(1.0)
        await send({"type": "http.response.body", "body": b"ok"})
        return
    if scope["path"] == "/stream":  # a head, then the first chunk a while later
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await asyncio.sleep(1.0)
        await send({"type": "http.response.body", "body": b"late", "more_body": False})
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    reply = b"echo:" + body
    headers = [(b"content-length", str(len(reply)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": reply})


@pytest.fixture(scope="module", params=["asyncio", "uvloop"])
def port(request: pytest.FixtureRequest) -> Iterator[int]:
    """A uvicorn server on the protocol, on each event loop --event_loop offers."""
    with uvicorn_in_thread(app, HeadJoiningProtocol, request.param) as free:
        yield free


def exchange(port: int, raw: bytes, until: bytes, timeout: float = 5.0) -> bytes:
    """Send raw bytes and read until the reply holds ``until`` (or the timeout)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
        conn.sendall(raw)
        got = b""
        deadline = time.monotonic() + timeout
        while until not in got and time.monotonic() < deadline:
            chunk = conn.recv(65536)
            if not chunk:
                break
            got += chunk
        return got


def test_a_real_server_answers_pipelined_requests_in_order(port: int) -> None:
    one = b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 3\r\n\r\n"
    got = exchange(port, one + b"abc" + one + b"def", until=b"echo:def")
    assert got.count(b"HTTP/1.1 200 OK") == 2
    assert got.index(b"echo:abc") < got.index(b"echo:def")


def test_a_real_server_answers_head_and_expect_continue(port: int) -> None:
    head = exchange(port, b"HEAD / HTTP/1.1\r\nhost: x\r\n\r\n", until=b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK") and b"content-length: 5" in head
    ask = b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\nexpect: 100-continue\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(ask)
        assert conn.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"  # not held back
        conn.sendall(b"hi")
        got = b""
        while b"echo:hi" not in got:
            chunk = conn.recv(1000)
            assert chunk, got
            got += chunk
    assert got.startswith(b"HTTP/1.1 200 OK")


def test_a_real_server_completes_a_websocket_upgrade(port: int) -> None:
    """The 101 answer has no body after it and the client speaks next: it must not wait."""
    pytest.importorskip("websockets")
    ask = (
        b"GET / HTTP/1.1\r\nhost: x\r\nupgrade: websocket\r\nconnection: Upgrade\r\n"
        b"sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\n"
    )
    mask = b"\x01\x02\x03\x04"
    frame = b"\x81\x82" + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(b"hi"))
    with socket.create_connection(("127.0.0.1", port), timeout=3) as conn:
        conn.sendall(ask)
        got = b""
        while b"\r\n\r\n" not in got:
            chunk = conn.recv(1000)  # a held 101 would time out here
            assert chunk, got
            got += chunk
        assert got.startswith(b"HTTP/1.1 101 Switching Protocols"), got[:80]
        conn.sendall(frame)
        while b"hello hi" not in got:
            chunk = conn.recv(1000)
            assert chunk, got
            got += chunk


def test_a_real_server_sends_a_streamed_head_before_its_first_chunk(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(b"GET /stream HTTP/1.1\r\nhost: x\r\n\r\n")
        conn.settimeout(0.6)  # the first chunk comes after 1 s
        head = conn.recv(1000)
        assert head.startswith(b"HTTP/1.1 200 OK") and b"transfer-encoding: chunked" in head
        assert b"late" not in head
        conn.settimeout(5)
        got = head
        while b"late" not in got:
            chunk = conn.recv(1000)
            assert chunk, got
            got += chunk


def test_a_real_server_sends_a_head_whose_body_comes_later_at_once(port: int) -> None:
    """Here the client sent expect: 100-continue and the app answers before reading the
    body, so no 100 comes: a held head would leave both sides waiting."""
    ask = b"POST /early HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\nexpect: 100-continue\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=0.6) as conn:
        conn.sendall(ask)
        head = conn.recv(1000)  # the body follows after 1 s
        assert head.startswith(b"HTTP/1.1 200 OK") and head.endswith(b"\r\n\r\n"), head
