"""The HTTP lane: a real uvicorn server on ``LaneProtocol`` answering over a socket, and
which requests the lane takes (the rest reach the ASGI endpoints)."""

from __future__ import annotations

import asyncio
import contextvars
import json
import socket
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from kserve import InferOutput, InferResponse
from server import uvicorn_in_thread
from starlette.requests import Request
from starlette.responses import Response

from predictor.errors import ModelNotFound
from predictor.http_lane import LaneProtocol
from predictor.lane import InferenceLane
from predictor.rest import Routes

LIMIT = 200_000  # --max_request_bytes of the test server


SEEN: contextvars.ContextVar[str | None] = contextvars.ContextVar("seen", default=None)


class Adder:
    """A model: the sum of each row. Before that it awaits ``gate`` (if set), then a
    bare yield and ``hold`` (a future, if set); it records the context variable it finds
    and sets it to the request's first value."""

    ready = True
    http_lane = True

    def __init__(self) -> None:
        self.gate: asyncio.Event | None = None
        self.hold: asyncio.Future | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.seen: list[str | None] = []

    async def __call__(self, request: Any, headers: Any = None) -> tuple[InferResponse, dict]:
        self.loop = asyncio.get_running_loop()
        x = request.inputs[0].as_numpy()
        self.seen.append(SEEN.get())
        SEEN.set(str(x[0, 0]))
        if self.gate is not None:
            await self.gate.wait()
            await asyncio.sleep(0)
        if self.hold is not None:
            await self.hold
        out = InferOutput(name="sum", shape=[len(x)], datatype="FP64", data=x.sum(axis=1))
        return InferResponse(model_name="m", infer_outputs=[out], response_id="r"), {}


class Foreign(Adder):
    """A subclass that does not say it takes the lane."""


class Wide(Adder):
    """Answers any request with 50 000 values (~200 KB of JSON)."""

    http_lane = True

    async def __call__(self, request: Any, headers: Any = None) -> tuple[InferResponse, dict]:
        data = np.full(50_000, 1.5)
        out = InferOutput(name="wide", shape=[len(data)], datatype="FP64", data=data)
        return InferResponse(model_name="wide", infer_outputs=[out], response_id="w"), {}


class Recorded(Routes):
    """Our routes on two models, recording which requests took the ASGI path."""

    def __init__(self) -> None:
        self.models = {"m": Adder(), "foreign": Foreign(), "wide": Wide()}
        self.adder = self.models["m"]
        registry = SimpleNamespace(get_model=self.models.get)
        dataplane = SimpleNamespace(model_registry=registry)
        super().__init__(dataplane=dataplane, max_request_bytes=LIMIT)  # type: ignore[arg-type]
        self.asgi: list[str] = []

    def model(self, name: str) -> Any:
        if name not in self.models:
            raise ModelNotFound(f"model '{name}' is not served here")
        return self.models[name]

    async def v2_infer(self, request: Request) -> Response:
        self.asgi.append(request.url.path)
        return await super().v2_infer(request)


async def other(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})


@pytest.fixture(scope="module", params=["asyncio", "uvloop"])
def served(request: pytest.FixtureRequest) -> Iterator[tuple[int, Recorded]]:
    """A uvicorn server on the lane protocol in a thread, on each loop --event_loop offers."""
    routes = Recorded()
    with uvicorn_in_thread(InferenceLane(other, routes), LaneProtocol, request.param) as port:
        yield port, routes


def infer_body(rows: list[list[float]], **extra: Any) -> bytes:
    tensor = {"name": "x", "shape": [len(rows), len(rows[0])], "datatype": "FP64"}
    tensor["data"] = [v for row in rows for v in row]
    return json.dumps({"inputs": [tensor], **extra}).encode()


def post(body: bytes, path: str = "/v2/models/m/infer", headers: str = "") -> bytes:
    head = f"POST {path} HTTP/1.1\r\nhost: x\r\ncontent-length: {len(body)}\r\n{headers}\r\n"
    return head.encode() + body


def read_replies(conn: socket.socket, count: int, timeout: float = 5.0) -> list[bytes]:
    """Read ``count`` whole replies (sized by content-length) from ``conn``."""
    conn.settimeout(timeout)
    got, replies = b"", []
    while len(replies) < count:
        end = got.find(b"\r\n\r\n")
        if end >= 0:
            length = int(split(got[: end + 4])[1]["content-length"])
            if len(got) >= end + 4 + length:
                replies.append(got[: end + 4 + length])
                got = got[end + 4 + length :]
                continue
        chunk = conn.recv(65536)
        assert chunk, f"connection closed after {len(replies)} replies: {got[:200]!r}"
        got += chunk
    return replies


def exchange(port: int, raw: bytes, count: int = 1) -> list[bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(raw)
        return read_replies(conn, count)


def split(reply: bytes) -> tuple[str, dict[str, str], bytes]:
    head, _, body = reply.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return lines[0], headers, body


def sums(body: bytes) -> list[float]:
    return list(json.loads(body)["outputs"][0]["data"])


def test_the_lane_answers_an_inference_post_itself(served: Any) -> None:
    port, routes = served
    routes.asgi.clear()
    [reply] = exchange(port, post(infer_body([[1, 2], [3, 4.5]]), headers="x-request-id: q1\r\n"))
    status, headers, body = split(reply)
    assert status == "HTTP/1.1 200 OK"
    assert headers["content-type"] == "application/json"
    assert int(headers["content-length"]) == len(body)
    assert headers["server"] == "uvicorn" and headers["date"].endswith(" GMT")
    assert sums(body) == [3.0, 7.5]
    assert routes.asgi == []  # not through the ASGI endpoint


def test_a_client_mistake_is_a_400_with_a_message(served: Any) -> None:
    port, routes = served
    routes.asgi.clear()
    [reply] = exchange(port, post(b'{"inputs": 5}'))
    status, headers, body = split(reply)
    assert status == "HTTP/1.1 400 Bad Request"
    assert headers["content-type"] == "application/json" and routes.asgi == []
    assert "non-empty list of tensors" in json.loads(body)["error"]
    [missing] = exchange(port, post(infer_body([[1]]), path="/v2/models/nope/infer"))
    assert split(missing)[0] == "HTTP/1.1 404 Not Found"
    assert "'nope' is not served here" in json.loads(split(missing)[2])["error"]


def test_binary_replies_carry_their_json_length(served: Any) -> None:
    port, _ = served
    body = infer_body([[1, 2]], outputs=[{"name": "sum", "parameters": {"binary_data": True}}])
    [reply] = exchange(port, post(body))
    _, headers, payload = split(reply)
    assert headers["content-type"] == "application/octet-stream"
    json_length = int(headers["inference-header-content-length"])
    assert json.loads(payload[:json_length])["outputs"][0]["parameters"]["binary_data_size"] == 8
    assert np.frombuffer(payload[json_length:], dtype=np.float64).tolist() == [3.0]


def test_keep_alive_and_pipelined_requests_are_answered_in_order(served: Any) -> None:
    port, _ = served
    raw = b"".join(post(infer_body([[i, 1]])) for i in range(5))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(raw)  # five requests in one write: the rest wait behind the first
        replies = read_replies(conn, 5)
        conn.sendall(post(infer_body([[10, 1]])))  # the connection stays open
        replies += read_replies(conn, 1)
    assert [sums(split(r)[2]) for r in replies] == [[i + 1.0] for i in (0, 1, 2, 3, 4, 10)]


def test_connection_close_and_http_1_0_close_after_the_reply(served: Any) -> None:
    port, _ = served
    for raw in (
        post(infer_body([[1, 1]]), headers="connection: close\r\n"),
        post(infer_body([[1, 1]])).replace(b"HTTP/1.1", b"HTTP/1.0", 1),
    ):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
            conn.sendall(raw)
            [reply] = read_replies(conn, 1)
            assert split(reply)[1]["connection"] == "close"
            assert conn.recv(100) == b""  # closed by the server


def test_a_body_in_pieces_and_a_big_body_are_read_whole(served: Any) -> None:
    port, routes = served
    routes.asgi.clear()
    raw = post(infer_body([[1, 2, 3]]))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        for i in range(0, len(raw), 20):
            conn.sendall(raw[i : i + 20])
            time.sleep(0.005)
        [reply] = read_replies(conn, 1)
    assert sums(split(reply)[2]) == [6.0]
    rows = [[float(i), 0.5] for i in range(6000)]  # ~100 KB: above uvicorn's read pause
    body = infer_body(rows)
    assert 65536 < len(body) < LIMIT
    raw = post(body)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(raw[:70_000])  # past the point where uvicorn would pause reading
        time.sleep(0.1)
        conn.sendall(raw[70_000:])
        [big] = read_replies(conn, 1)
    assert sums(split(big)[2]) == [i + 0.5 for i in range(6000)]
    assert routes.asgi == []


@pytest.mark.parametrize(
    "headers, body, status",
    [
        ("expect: 100-continue\r\n", None, "HTTP/1.1 200 OK"),
        ("", b"x" * (LIMIT + 1), "HTTP/1.1 413 Request Entity Too Large"),
    ],
    ids=["expect-continue", "over-the-limit"],
)
def test_other_requests_take_the_asgi_path(
    served: Any, headers: str, body: Any, status: str
) -> None:
    port, routes = served
    routes.asgi.clear()
    raw = post(body or infer_body([[1, 2]]), headers=headers)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        if "expect" in headers:
            head, _, rest = raw.partition(b"\r\n\r\n")
            conn.sendall(head + b"\r\n\r\n")
            assert conn.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
            conn.sendall(rest)
        else:
            conn.sendall(raw)
        [reply] = read_replies(conn, 1)
    assert split(reply)[0] == status
    assert routes.asgi == ["/v2/models/m/infer"]


def test_a_chunked_body_takes_the_asgi_path(served: Any) -> None:
    port, routes = served
    routes.asgi.clear()
    body = infer_body([[2, 2]])
    raw = (
        b"POST /v2/models/m/infer HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n"
        + b"%x\r\n" % len(body)
        + body
        + b"\r\n0\r\n\r\n"
    )
    [reply] = exchange(port, raw)
    assert sums(split(reply)[2]) == [4.0]
    assert routes.asgi == ["/v2/models/m/infer"]


def test_other_paths_reach_the_app(served: Any) -> None:
    port, routes = served
    routes.asgi.clear()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(b"GET /v2/health/ready HTTP/1.1\r\nhost: x\r\n\r\n")
        conn.settimeout(5)
        assert conn.recv(1000).startswith(b"HTTP/1.1 204 No Content")
    assert routes.asgi == []


def test_an_answer_that_waits_goes_on_when_its_future_is_done(served: Any) -> None:
    """The model awaits an event and a bare yield: the reply comes when the event is set,
    the connection keeps serving, and a client that left meanwhile stops nothing."""
    port, routes = served
    exchange(port, post(infer_body([[0, 0]])))
    loop = routes.adder.loop
    assert loop is not None
    gate = routes.adder.gate = asyncio.Event()
    try:
        gone = socket.create_connection(("127.0.0.1", port), timeout=5)
        gone.sendall(post(infer_body([[1, 1]])))
        with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
            conn.sendall(post(infer_body([[5, 5]])))
            conn.settimeout(0.3)
            with pytest.raises(TimeoutError):
                conn.recv(100)  # held by the gate
            gone.close()
            time.sleep(0.1)
            loop.call_soon_threadsafe(gate.set)
            [reply] = read_replies(conn, 1)
            assert sums(split(reply)[2]) == [10.0]
            routes.adder.gate = None
            conn.sendall(post(infer_body([[2, 5]])))
            assert sums(split(read_replies(conn, 1)[0])[2]) == [7.0]
    finally:
        routes.adder.gate = None
    [after] = exchange(port, post(infer_body([[1, 2]])))
    assert sums(split(after)[2]) == [3.0]


def test_a_cancelled_wait_is_a_500_and_a_close(served: Any) -> None:
    """Cancellation (a worker thread's future at shutdown) escapes the endpoint: the client
    gets a 500 and the connection closes, as on the ASGI path; the server serves on."""
    port, routes = served
    exchange(port, post(infer_body([[0, 0]])))
    loop = routes.adder.loop
    assert loop is not None
    hold = routes.adder.hold = loop.create_future()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
            conn.sendall(post(infer_body([[1, 1]])))
            time.sleep(0.2)
            loop.call_soon_threadsafe(hold.cancel)
            [reply] = read_replies(conn, 1)
            status, headers, body = split(reply)
            assert status == "HTTP/1.1 500 Internal Server Error"
            assert headers["connection"] == "close" and body == b"Internal Server Error"
            assert conn.recv(100) == b""
    finally:
        routes.adder.hold = None
    assert sums(split(exchange(port, post(infer_body([[1, 2]])))[0])[2]) == [3.0]


def test_each_request_runs_in_a_context_of_its_own(served: Any) -> None:
    port, routes = served
    routes.adder.seen.clear()
    raw = post(infer_body([[7, 0]]))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        for _ in range(3):
            conn.sendall(raw)
            read_replies(conn, 1)
    assert routes.adder.seen == [None, None, None]  # not the value the one before set


def test_a_model_class_that_does_not_opt_in_takes_the_asgi_path(served: Any) -> None:
    port, routes = served
    routes.asgi.clear()
    [reply] = exchange(port, post(infer_body([[1, 2]]), path="/v2/models/foreign/infer"))
    assert sums(split(reply)[2]) == [3.0]
    assert routes.asgi == ["/v2/models/foreign/infer"]


def test_replies_backing_up_send_requests_the_asgi_way(served: Any) -> None:
    """A client that sends without reading: once the transport's buffer is past its high
    mark, requests take the ASGI path, which waits for it to drain (and pauses reading),
    so replies do not pile up in memory; every request still gets its reply, in order."""
    port, routes = served
    routes.asgi.clear()
    one = post(infer_body([[1.0, 2.0]]), path="/v2/models/wide/infer")  # ~200 KB back
    with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for _ in range(60):  # one request per read on the server: none is pipelined
            conn.sendall(one)
            time.sleep(0.005)
        replies = read_replies(conn, 60, timeout=30)
    assert routes.asgi, "every request took the lane while the client did not read"
    assert all(json.loads(split(r)[2])["outputs"][0]["shape"] == [50_000] for r in replies)


def test_an_unknown_model_is_a_404_before_its_body_is_read(served: Any) -> None:
    port, _ = served
    head = b"POST /v2/models/nope/infer HTTP/1.1\r\nhost: x\r\ncontent-length: %d\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(head % (LIMIT + 1) + b"{")  # over the limit, and most never sent
        [reply] = read_replies(conn, 1)
    status, _, body = split(reply)
    assert status == "HTTP/1.1 404 Not Found"
    assert json.loads(body) == {"error": "model 'nope' is not served here"}
