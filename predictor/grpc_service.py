"""gRPC glue: KServe's V2 servicer with our inference, metadata, readiness and errors.

Every error is answered with the gRPC code its type carries (a client mistake is
INVALID_ARGUMENT, an unknown model NOT_FOUND, a loading model UNAVAILABLE) and the same
message as over REST. Responses put tensor data in ``raw_output_contents``. The common
request (one numeric tensor) is answered by :mod:`predictor.grpc_lane` without KServe's
request and response objects; every other request, and every error, by the general path.
"""

from __future__ import annotations

import logging
import time
from concurrent import futures
from typing import Any

import grpc
from grpc import aio
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc
from kserve.protocol.grpc.server import GRPCServer
from kserve.protocol.grpc.servicer import InferenceServicer
from kserve.protocol.infer_type import InferRequest

from predictor import grpc_lane, metrics, responses
from predictor.errors import ModelNotFound, ModelNotReady, PredictorError
from predictor.rest import log_error, status_of
from predictor.tensors import check_header

log = logging.getLogger("predictor.grpc")
REPOSITORY_DISABLED = "the model repository API (load/unload) is disabled on this server"

_CODES = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    404: grpc.StatusCode.NOT_FOUND,
    503: grpc.StatusCode.UNAVAILABLE,
}


def code_of(err: Exception, status: int) -> grpc.StatusCode:
    if isinstance(err, PredictorError):
        return err.grpc_code
    return _CODES.get(status, grpc.StatusCode.INTERNAL)


class Servicer(InferenceServicer):
    """KServe's servicer with our ModelInfer / ModelMetadata / readiness."""

    def _model(self, name: str) -> Any:
        model = self._data_plane.model_registry.get_model(name)
        if model is None:
            raise ModelNotFound(f"model '{name}' is not served here")
        if not model.ready:
            raise ModelNotReady(f"model '{name}' is still loading")
        return model

    async def _abort(self, context: aio.ServicerContext, err: Exception, **fields: Any) -> None:
        status, message = status_of(err)
        log_error(err, status, message, **fields)
        await context.abort(code_of(err, status), message)

    async def ModelInfer(  # noqa: N802 - gRPC method name
        self, request: pb.ModelInferRequest, context: aio.ServicerContext
    ) -> pb.ModelInferResponse:
        started = time.perf_counter()
        status = 200
        name = request.model_name
        try:
            model = self._model(name)
            answered = await grpc_lane.answer(model, request)  # the common request, lean
            if answered is not None:
                return answered
            self.validate_grpc_request(request)
            for tensor in request.inputs:  # before KServe decodes contents by datatype
                check_header(tensor.name, tensor.datatype, list(tensor.shape))
            infer_request = InferRequest.from_grpc(request)
            result, _ = await model(infer_request, headers={})  # its stages, as DataPlane.infer
            return responses.to_grpc(result)
        except Exception as err:
            status = status_of(err)[0]
            await self._abort(context, err, model=name, protocol=metrics.V2_GRPC)
            raise  # not reached: abort raises
        finally:
            metrics.observe(name, metrics.V2_GRPC, status, time.perf_counter() - started)

    async def ModelMetadata(  # noqa: N802
        self, request: pb.ModelMetadataRequest, context: aio.ServicerContext
    ) -> pb.ModelMetadataResponse:
        try:
            meta = self._model(request.name).metadata()
        except Exception as err:
            await self._abort(context, err, model=request.name, protocol=metrics.V2_GRPC)
            raise
        return pb.ModelMetadataResponse(
            name=meta["name"],
            versions=meta["versions"],
            platform=meta["platform"],
            inputs=meta["inputs"],
            outputs=meta["outputs"],
        )

    async def ModelReady(  # noqa: N802
        self, request: pb.ModelReadyRequest, context: aio.ServicerContext
    ) -> pb.ModelReadyResponse:
        model = self._data_plane.model_registry.get_model(request.name)
        if model is None:
            await self._abort(context, ModelNotFound(f"model '{request.name}' is not served here"))
        return pb.ModelReadyResponse(ready=bool(model.ready))

    async def ServerReady(  # noqa: N802
        self, request: pb.ServerReadyRequest, context: aio.ServicerContext
    ) -> pb.ServerReadyResponse:
        models = self._data_plane.model_registry.get_models().values()
        return pb.ServerReadyResponse(ready=bool(models) and all(m.ready for m in models))

    async def RepositoryModelLoad(self, request: Any, context: aio.ServicerContext) -> Any:  # noqa: N802
        await context.abort(grpc.StatusCode.PERMISSION_DENIED, REPOSITORY_DISABLED)

    async def RepositoryModelUnload(self, request: Any, context: aio.ServicerContext) -> Any:  # noqa: N802
        await context.abort(grpc.StatusCode.PERMISSION_DENIED, REPOSITORY_DISABLED)


class Server(GRPCServer):
    """KServe's gRPC server with our servicer and no per-request log interceptor."""

    async def start(self, max_workers: int) -> None:
        self._server = aio.server(
            futures.ThreadPoolExecutor(max_workers=max_workers),
            options=[
                ("grpc.max_send_message_length", self._kwargs["grpc_max_send_message_length"]),
                (
                    "grpc.max_receive_message_length",
                    self._kwargs["grpc_max_receive_message_length"],
                ),
                ("grpc.so_reuseport", 0),
            ],
        )
        servicer = Servicer(self._data_plane, self._model_repository_extension)
        grpc_predict_v2_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(servicer, self._server)
        address = f"[::]:{self._port}"
        self._server.add_insecure_port(address)
        log.info("gRPC V2 server listening on %s", address)
        await self._server.start()
        await self._server.wait_for_termination()
