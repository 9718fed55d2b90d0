"""The inference lane: inference POSTs reach our endpoints without the middleware stack.

KServe's FastAPI app wraps every request in FastAPI's and Starlette's layers: the
OpenTelemetry check, the error, exception, body-limit and exit-stack middlewares, the
router's scan and the endpoint wrappers. For a one-row request that is about a quarter
of the server's CPU (measured: ~80 vs ~110 µs per request, RF one row, c=64, 2-core AMD
VM). ``InferenceLane`` sits in front of the app and hands the inference routes
(V2 ``/v2/models/{name}[/versions/{version}]/infer``, V1 ``/v1/models/{name}:predict``,
POST only) straight to :class:`predictor.rest.Routes`, which turn every failure into a
JSON error themselves. Everything else (metadata, health, metrics, docs, lifespan, other
methods, any other path) goes to the app unchanged.

What the lane's requests do not get: FastAPI's native OpenTelemetry spans and metrics,
and middleware added to the app later. The predictor's own Prometheus metrics
(``predictor_request_duration_seconds`` and KServe's stage histograms) cover them.
"""

from __future__ import annotations

import re
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from predictor.rest import unexpected_error

# as Starlette compiles "{model_name}": one or more characters other than "/"
V2_INFER = re.compile(
    r"/v2/models/(?P<model_name>[^/]+)(?:/versions/(?P<model_version>[^/]+))?/infer"
)
V1_PREDICT = re.compile(r"/v1/models/(?P<model_name>[^/]+):predict")


class Endpoints(Protocol):
    """The endpoints the lane calls (:class:`predictor.rest.Routes`)."""

    async def v2_infer(self, request: Request) -> Response: ...

    async def v1_predict(self, request: Request) -> Response: ...


def route_path(scope: Scope) -> str:
    """The path the app's router would match: ``path`` without its ``root_path`` prefix."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root) and (len(path) == len(root) or path[len(root)] == "/"):
        return path[len(root) :]
    return path


class InferenceLane:
    """ASGI app: inference POSTs to ``endpoints``, everything else to ``app``."""

    def __init__(self, app: ASGIApp, endpoints: Endpoints) -> None:
        self.app = app
        self.endpoints = endpoints

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            endpoint = self._match(scope)
            if endpoint is not None:
                request = Request(scope, receive, send)
                try:
                    response = await endpoint(request)
                except Exception as err:  # the endpoints answer their own errors; not this
                    response = await unexpected_error(request, err)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _match(self, scope: Scope) -> Any:
        path = route_path(scope)
        if path.endswith("/infer"):
            found, endpoint = V2_INFER.fullmatch(path), self.endpoints.v2_infer
        elif path.endswith(":predict"):
            found, endpoint = V1_PREDICT.fullmatch(path), self.endpoints.v1_predict
        else:
            return None
        if found is None:
            return None
        scope["path_params"] = {k: v for k, v in found.groupdict().items() if v is not None}
        return endpoint
