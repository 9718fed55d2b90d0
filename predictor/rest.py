"""REST glue: our V1/V2 inference, metadata and readiness routes on KServe's FastAPI app.

The routes are plain Starlette endpoints placed ahead of KServe's own for the same paths:
they read the raw body (JSON whatever the ``Content-Type``, or JSON + binary tensors),
hand a KServe ``InferRequest`` (V2) or dict (V1) to the model found in KServe's registry
— which runs its preprocess / predict / postprocess, as ``DataPlane.infer`` would, minus
a second registry lookup — and encode the answer with orjson. Every
error becomes ``{"error": message}`` with the status its type carries; no traceback ever
reaches a response body.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from typing import Any, NamedTuple

import orjson
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from kserve import errors as kserve_errors
from kserve.protocol.dataplane import DataPlane
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from predictor import metrics, responses, rest_lane, tensors
from predictor.errors import ModelNotFound, ModelNotReady, PayloadTooLarge, PredictorError

log = logging.getLogger("predictor.rest")
JSON = "application/json"
BINARY = "application/octet-stream"  # a V2 reply with binary tensor data after its JSON
OFFLOAD_BYTES = 256 * 1024  # bodies above this are parsed and encoded in a worker thread


class Reply(NamedTuple):
    """An inference reply: status, body, content type and (binary replies) JSON length."""

    status: int
    body: bytes
    media_type: str = JSON
    json_length: int | None = None


def json_response(doc: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(doc), status_code=status, media_type=JSON)


def status_of(err: Exception) -> tuple[int, str]:
    """HTTP status and message for any exception, without a traceback."""
    if isinstance(err, PredictorError):
        return int(err.status), err.message
    if isinstance(err, kserve_errors.InvalidInput):
        return 400, str(err)
    if isinstance(err, kserve_errors.ModelNotFound):
        return 404, str(err)
    if isinstance(err, kserve_errors.ModelNotReady | kserve_errors.ServerNotReady):
        return 503, str(err)
    return 500, f"internal error: {type(err).__name__}: {err}"


def log_error(err: Exception, status: int, message: str, **fields: Any) -> None:
    """The one log line an error gets (with a traceback only for server faults)."""
    extra = {"status": status, "error": type(err).__name__, **fields}
    if status >= 500 and not isinstance(err, PredictorError | kserve_errors.ModelNotReady):
        log.error("request failed: %s", message, extra=extra, exc_info=err)
    else:
        log.warning("request rejected: %s", message, extra=extra)


class Routes:
    """Our endpoints, bound to KServe's data plane."""

    def __init__(self, dataplane: DataPlane, max_request_bytes: int = 64 * 1024 * 1024) -> None:
        self.dataplane = dataplane
        self.max_request_bytes = max_request_bytes

    def model(self, name: str) -> Any:
        model = self.dataplane.model_registry.get_model(name)
        if model is None:
            served = ", ".join(self.dataplane.model_registry.get_models()) or "none"
            raise ModelNotFound(f"model '{name}' is not served here; served models: {served}")
        if not model.ready:
            raise ModelNotReady(f"model '{name}' is still loading")
        return model

    async def _infer(self, request: Request, protocol: str) -> Response:
        name = request.path_params["model_name"]
        started = time.perf_counter()
        try:
            self.model(name)  # an unknown or loading model: 404 / 503 before the body
            body = await self._body(request, self.max_request_bytes)
        except Exception as err:
            reply = self.failure(err, name, protocol)
            metrics.observe(name, protocol, reply.status, time.perf_counter() - started)
        else:
            reply = await self.answer(
                name,
                protocol,
                body,
                request.headers.get(tensors.HEADER_LENGTH),
                request.headers.get("x-request-id", ""),
                started,
            )
        response = Response(reply.body, status_code=reply.status, media_type=reply.media_type)
        if reply.json_length is not None:
            response.headers[tensors.HEADER_LENGTH] = str(reply.json_length)
        return response

    async def answer(
        self,
        name: str,
        protocol: str,
        body: bytes,
        header_length: str | None,
        request_id: str,
        started: float | None = None,
    ) -> Reply:
        """The reply to one inference body: every failure is a JSON error, never raised.

        Args:
            name: The model named in the path.
            protocol: ``metrics.V2_REST`` or ``metrics.V1_REST``.
            body: The whole request body.
            header_length: The ``Inference-Header-Content-Length`` header, if sent.
            request_id: The ``x-request-id`` header ("" if none).
            started: ``time.perf_counter()`` when the request arrived (default: now).

        Returns:
            The status, body and content type to send.
        """
        started = time.perf_counter() if started is None else started
        status = 200
        try:
            model = self.model(name)
            headers = {"x-request-id": request_id}
            big = len(body) > OFFLOAD_BYTES  # parse and encode off the event loop
            loop = asyncio.get_running_loop()
            if protocol == metrics.V2_REST:
                if header_length is None and not big:  # the common request: no objects
                    plain = await rest_lane.answer(model, body)
                    if plain is not None:
                        return Reply(200, plain)
                parse = functools.partial(tensors.parse_rest_v2, body, header_length, name)
                infer_request = await loop.run_in_executor(None, parse) if big else parse()
                result, _ = await model(infer_request, headers=headers)
                encode = functools.partial(responses.to_rest_v2, result, infer_request)
                payload, json_length = await loop.run_in_executor(None, encode) if big else encode()
                if json_length is not None:
                    return Reply(200, payload, BINARY, json_length)
                return Reply(200, payload)
            parse_v1 = functools.partial(tensors.parse_json, body)
            doc = await loop.run_in_executor(None, parse_v1) if big else parse_v1()
            result, _ = await model(doc, headers=headers)
            return Reply(200, responses.to_v1(result["predictions"]))
        except Exception as err:  # every failure becomes a JSON error, never a traceback
            reply = self.failure(err, name, protocol)
            status = reply.status
            return reply
        finally:
            metrics.observe(name, protocol, status, time.perf_counter() - started)

    @staticmethod
    def failure(err: Exception, name: str, protocol: str) -> Reply:
        """The JSON error reply for ``err`` (logged once)."""
        status, message = status_of(err)
        log_error(err, status, message, model=name, protocol=protocol)
        return Reply(status, orjson.dumps({"error": message}))

    @staticmethod
    async def _body(request: Request, limit: int) -> bytes:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise PayloadTooLarge(
                f"request body is {declared} bytes; this server takes at most {limit} "
                "(--max_request_bytes)"
            )
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"request body is over {limit} bytes (--max_request_bytes)")
            chunks.append(chunk)
        return b"".join(chunks)

    async def v2_infer(self, request: Request) -> Response:
        return await self._infer(request, metrics.V2_REST)

    async def v1_predict(self, request: Request) -> Response:
        return await self._infer(request, metrics.V1_REST)

    async def v2_metadata(self, request: Request) -> Response:
        try:
            return json_response(self.model(request.path_params["model_name"]).metadata())
        except Exception as err:
            status, message = status_of(err)
            return json_response({"error": message}, status)

    async def v2_model_ready(self, request: Request) -> Response:
        name = request.path_params["model_name"]
        try:
            model = self.dataplane.model_registry.get_model(name)
            if model is None:
                raise ModelNotFound(f"model '{name}' is not served here")
        except PredictorError as err:
            return json_response({"error": err.message}, int(err.status))
        ready = bool(model.ready)
        return json_response({"name": name, "ready": ready}, 200 if ready else 503)

    async def v2_server_ready(self, request: Request) -> Response:
        models = self.dataplane.model_registry.get_models().values()
        ready = bool(models) and all(m.ready for m in models)
        return json_response({"ready": ready}, 200 if ready else 503)

    async def repository_disabled(self, request: Request) -> Response:
        return json_response(
            {"error": "the model repository API (load/unload) is disabled on this server"}, 403
        )

    def install(self, app: FastAPI) -> None:
        """Put our routes first, so they answer before KServe's for the same paths."""
        ours = [
            Route("/v2/models/{model_name}/infer", self.v2_infer, methods=["POST"]),
            Route(
                "/v2/models/{model_name}/versions/{model_version}/infer",
                self.v2_infer,
                methods=["POST"],
            ),
            Route("/v1/models/{model_name}:predict", self.v1_predict, methods=["POST"]),
            Route("/v2/models/{model_name}", self.v2_metadata, methods=["GET"]),
            Route("/v2/models/{model_name}/ready", self.v2_model_ready, methods=["GET"]),
            Route("/v2/health/ready", self.v2_server_ready, methods=["GET"]),
            Route(
                "/v2/repository/models/{model_name}/{action}",
                self.repository_disabled,
                methods=["POST"],
            ),
            Route("/v2/repository/index", self.repository_disabled, methods=["POST"]),
        ]
        app.router.routes[0:0] = ours
        app.add_exception_handler(RequestValidationError, _validation_error)
        app.add_exception_handler(Exception, unexpected_error)


async def _validation_error(request: Request, err: Exception) -> Response:
    details: list[dict[str, Any]] = getattr(err, "errors", lambda: [])()
    parts = [f"{'.'.join(str(p) for p in d.get('loc', ()))}: {d.get('msg')}" for d in details]
    message = "invalid request: " + ("; ".join(parts) or str(err))
    log_error(err, 400, message, path=request.url.path)
    return json_response({"error": message}, 400)


async def unexpected_error(request: Request, err: Exception) -> Response:
    """A JSON error for an exception no endpoint handled (status from its type)."""
    status, message = status_of(err)
    log_error(err, status, message, path=request.url.path)
    return json_response({"error": message}, status)
