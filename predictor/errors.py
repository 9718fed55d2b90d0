"""The error tree. Each error carries the HTTP status and gRPC code it is answered with.

::

    PredictorError                 500 INTERNAL
    ├── BadRequest                 400 INVALID_ARGUMENT   the client's mistake
    │   ├── MalformedBody              body empty, not JSON, not an object
    │   ├── InvalidTensor              shape / datatype / data length disagree
    │   ├── FeatureMismatch            features missing, unknown, wrong kind
    │   ├── UnknownOutput              output the estimator cannot compute
    │   ├── ModelRejectedInput         the estimator refused the (validated) input
    │   └── PayloadTooLarge        413 RESOURCE_EXHAUSTED  body over --max_request_bytes
    ├── ModelNotFound              404 NOT_FOUND
    ├── ModelNotReady              503 UNAVAILABLE        still loading
    ├── InferenceFailed            500 INTERNAL           the estimator crashed
    └── ModelLoadError             (start-up only: logged, then exit 1)
        ├── ArtifactNotFound / AmbiguousArtifact / UnsupportedFormat
        ├── DigestMismatch
        └── UntrustedTypes

``BadRequest`` also subclasses KServe's ``InvalidInput`` and ``ModelNotFound`` KServe's
``ModelNotFound``, so KServe's own handlers answer them with the same codes.
"""

from __future__ import annotations

from http import HTTPStatus

import grpc
from kserve import errors as kserve_errors


class PredictorError(Exception):
    """Base of every error the predictor raises on purpose."""

    status: HTTPStatus = HTTPStatus.INTERNAL_SERVER_ERROR
    grpc_code: grpc.StatusCode = grpc.StatusCode.INTERNAL

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.reason = message  # the attribute KServe's handlers read

    def __str__(self) -> str:
        return self.message

    @property
    def kind(self) -> str:
        return type(self).__name__


class BadRequest(PredictorError, kserve_errors.InvalidInput):
    """The request is wrong; the message says which part, what was expected, what came."""

    status = HTTPStatus.BAD_REQUEST
    grpc_code = grpc.StatusCode.INVALID_ARGUMENT


class MalformedBody(BadRequest):
    """The body is empty, not JSON, or not the shape of a request."""


class InvalidTensor(BadRequest):
    """A tensor's shape, datatype and data do not agree with each other or the model."""


class FeatureMismatch(BadRequest):
    """Named inputs do not match the model's features."""


class UnknownOutput(BadRequest):
    """A requested output is not a method the estimator offers."""


class ModelRejectedInput(BadRequest):
    """The estimator raised on input that passed validation (e.g. an unknown category)."""


class PayloadTooLarge(BadRequest):
    """The body is larger than ``--max_request_bytes``."""

    status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    grpc_code = grpc.StatusCode.RESOURCE_EXHAUSTED


class ModelNotFound(PredictorError, kserve_errors.ModelNotFound):
    """No model of that name is served here."""

    status = HTTPStatus.NOT_FOUND
    grpc_code = grpc.StatusCode.NOT_FOUND


class ModelNotReady(PredictorError):
    """The model is still loading."""

    status = HTTPStatus.SERVICE_UNAVAILABLE
    grpc_code = grpc.StatusCode.UNAVAILABLE


class InferenceFailed(PredictorError):
    """The estimator failed in a way that is not the client's fault."""


class ModelLoadError(PredictorError):
    """The model could not be loaded; raised at start-up only."""


class ArtifactNotFound(ModelLoadError):
    """No model artifact where one was expected."""


class AmbiguousArtifact(ModelLoadError):
    """More than one candidate artifact."""


class UnsupportedFormat(ModelLoadError):
    """The artifact's extension is not one we load."""


class DigestMismatch(ModelLoadError):
    """The artifact's sha256 differs from the pinned digest."""


class UntrustedTypes(ModelLoadError):
    """A .skops artifact holds types outside the trusted set."""
