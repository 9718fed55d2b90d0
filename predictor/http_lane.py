"""The HTTP lane: an inference POST answered from the protocol, without an ASGI cycle.

For every request uvicorn builds an ASGI scope, starts a task (which first runs a loop
pass later), and passes the body and the answer through ``receive`` / ``send`` message
dicts; Starlette wraps them in ``Request`` and ``Response`` objects and uvicorn checks
every response header against two regular expressions. For an inference POST none of
that does anything the endpoint needs: it wants the body bytes and two headers, and
gives back a status, a body and a content type.

:class:`LaneProtocol` (uvicorn's httptools protocol, heads joined with their bodies as
in :mod:`predictor.http_protocol`) takes an inference POST (the paths of
:mod:`predictor.lane`) that declares its ``content-length`` (at most
``--max_request_bytes``), expects no ``100 Continue`` and is not pipelined behind another
request. It collects the body as it arrives and, once the body is complete, runs
:meth:`predictor.rest.Routes.answer` at once, in the same loop pass; an answer that must
wait (a batch, a worker thread) goes on when the future it awaits is done, without a
task. The reply leaves in one write with uvicorn's default headers (``server``,
``date``), ``content-type`` and ``content-length``; keep-alive, ``connection: close``,
the access log, graceful shutdown (which waits for open connections) and requests
pipelined behind it behave as on the ASGI path. Every other request takes the ASGI path
unchanged.

Measured (2-core AMD VM, busy host, wrk on the same cores): server CPU per request, LR
one row ~145 -> ~110 µs and LR 1000-row JSON ~215 -> ~165 µs at 2 connections; RF one
row, REST, A/B against the ASGI path: +29 % req/s at c=64, +25 % at c=16, +19 % at c=1.
"""

from __future__ import annotations

import contextvars
import functools
import logging
import time
from collections.abc import Coroutine
from typing import Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, RequestResponseCycle

from predictor import metrics, tensors
from predictor.http_protocol import HeadJoiningProtocol
from predictor.lane import V1_PREDICT, V2_INFER, InferenceLane, route_path
from predictor.rest import Reply, Routes

log = logging.getLogger("predictor.http")
_LENGTH = b"content-length"
_HEADER_LENGTH = tensors.HEADER_LENGTH.lower().encode()
_REQUEST_ID = b"x-request-id"
_CHUNKED = b"transfer-encoding"
# a model class whose own __dict__ sets this true takes the lane (a subclass must say so
# again: its code may need a running task, e.g. for asyncio.timeout)
LANE = "http_lane"


class _Taken:
    """One inference request the lane took: its cycle and what the endpoint needs."""

    __slots__ = ("cycle", "header_length", "model", "protocol", "request_id", "started")

    def __init__(self, cycle: RequestResponseCycle, model: str, protocol: str) -> None:
        self.cycle = cycle
        self.model = model
        self.protocol = protocol
        self.header_length: str | None = None
        self.request_id = ""
        self.started = time.perf_counter()


class LaneProtocol(HeadJoiningProtocol):
    """uvicorn's httptools protocol answering inference POSTs itself (module docstring)."""

    _taken: _Taken | None = None
    _in_headers = False

    def _routes(self) -> Routes | None:
        lane = getattr(self.config, "app", None)
        routes = getattr(lane, "endpoints", None) if isinstance(lane, InferenceLane) else None
        return routes if isinstance(routes, Routes) else None

    def on_headers_complete(self) -> None:
        self._in_headers = True  # a task started now is this request's own, not pipelined
        try:
            super().on_headers_complete()
        finally:
            self._in_headers = False

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        taken = self._take(cycle) if self._in_headers and app is self.app else None
        if taken is None:
            super()._start_asgi_task(cycle, app)
            return
        self._taken = taken

    def _take(self, cycle: RequestResponseCycle) -> _Taken | None:
        """The request, if the lane answers it: an inference POST of declared size, for a
        ready model whose class takes the lane, while replies are not backing up."""
        scope = cycle.scope
        if scope["method"] != "POST" or cycle.waiting_for_100_continue:
            return None
        if self.flow.write_paused:  # the client is not reading: the ASGI path waits
            return None
        if self.access_log and self.access_logger.isEnabledFor(logging.INFO):
            return None  # its lines (client behind a proxy, query string) are uvicorn's
        routes = self._routes()
        if routes is None:
            return None
        path = route_path(scope)  # type: ignore[arg-type]
        if path.endswith("/infer"):
            found, protocol = V2_INFER.fullmatch(path), metrics.V2_REST
        elif path.endswith(":predict"):
            found, protocol = V1_PREDICT.fullmatch(path), metrics.V1_REST
        else:
            return None
        if found is None or not _takes(routes, found["model_name"]):
            return None  # unknown, loading or foreign models: the ASGI path answers
        taken = _Taken(cycle, found["model_name"], protocol)
        length = None
        for name, value in scope["headers"]:
            if name == _LENGTH:
                length = value
            elif name == _HEADER_LENGTH:
                taken.header_length = value.decode("latin-1")
            elif name == _REQUEST_ID:
                taken.request_id = value.decode("latin-1")
            elif name == _CHUNKED:
                return None
        if length is None or not length.isdigit() or int(length) > routes.max_request_bytes:
            return None  # the ASGI path reads it and answers 413 where it must
        return taken

    def on_body(self, body: bytes) -> None:
        taken = self._taken
        if taken is not None and taken.cycle is self.cycle:
            # the declared length is within the limit: collect it all, no flow control
            taken.cycle.body += body
            return
        super().on_body(body)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        taken = self._taken
        if taken is not None and not taken.cycle.more_body:
            self._taken = None  # the body is complete: answer (after the parser is done)
            self._answer(taken)

    def _answer(self, taken: _Taken) -> None:
        routes = self._routes()
        assert routes is not None
        cycle = taken.cycle
        body, cycle.body = bytes(cycle.body), bytearray()
        coro = routes.answer(
            taken.model, taken.protocol, body, taken.header_length, taken.request_id, taken.started
        )
        # each request runs in a context of its own, as each ASGI task does
        fresh = getattr(self.config, "reset_contextvars", False)
        self._step(cycle, coro, contextvars.Context() if fresh else contextvars.copy_context())

    def _step(
        self,
        cycle: RequestResponseCycle,
        coro: Coroutine[Any, Any, Reply],
        context: contextvars.Context,
        *_: Any,
    ) -> None:
        """Run ``coro`` to its next await, as a task's step would; resume it when what it
        awaits is done. No task: one answering at once never needs one, and one waiting
        for a batch is resumed by its future's callback (a task would add a loop pass
        and its own bookkeeping to each of a batch's requests)."""
        try:
            waiting = context.run(coro.send, None)
        except StopIteration as done:
            self._reply(cycle, done.value)
            return
        except BaseException as err:  # answer() turns exceptions into replies; not these
            self._fail(cycle, err)
            return
        if getattr(waiting, "_asyncio_future_blocking", False):  # awaits an asyncio future
            waiting._asyncio_future_blocking = False
            waiting.add_done_callback(functools.partial(self._step, cycle, coro, context))
        elif waiting is None:  # a bare yield (asyncio.sleep(0)): run again next pass
            self.loop.call_soon(self._step, cycle, coro, context)
        else:  # what a task refuses too
            coro.close()
            self._fail(cycle, RuntimeError(f"inference awaited {waiting!r}, not a future"))

    def _reply(self, cycle: RequestResponseCycle, reply: Reply) -> None:
        cycle.response_started, cycle.waiting_for_100_continue = True, False
        if cycle.disconnected:
            return
        head = [STATUS_LINE[reply.status]]
        for name, value in cycle.default_headers:
            head += [name, b": ", value, b"\r\n"]
        head += [b"content-type: ", reply.media_type.encode(), b"\r\n"]
        if reply.json_length is not None:
            head += [_HEADER_LENGTH, b": ", str(reply.json_length).encode(), b"\r\n"]
        head += [_LENGTH, b": ", str(len(reply.body)).encode(), b"\r\n"]
        if not cycle.keep_alive:
            head.append(b"connection: close\r\n")
        head += [b"\r\n", reply.body]
        self.transport.write(b"".join(head))
        cycle.response_complete = True
        cycle.message_event.set()
        if not cycle.keep_alive:
            self.transport.close()
        cycle.on_response()

    def _fail(self, cycle: RequestResponseCycle, err: BaseException) -> None:
        """An exception escaped ``answer`` (it answers its own; this is cancellation, as
        of a worker thread's future at shutdown): a 500 and close, as uvicorn does."""
        log.error("inference request failed outside its endpoint", exc_info=err)
        if cycle.disconnected or cycle.response_complete:
            return
        cycle.keep_alive = False
        self._reply(cycle, Reply(500, b"Internal Server Error", "text/plain; charset=utf-8"))


def _takes(routes: Routes, name: str) -> bool:
    """Whether the model ``name`` is ready and its class takes the lane: its own code runs
    to its first await outside a task, which only classes that say so allow."""
    model = routes.dataplane.model_registry.get_model(name)
    return model is not None and model.ready is True and bool(type(model).__dict__.get(LANE))
