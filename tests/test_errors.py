"""predictor.errors: the error tree, its HTTP statuses and gRPC codes, KServe's bases."""

from __future__ import annotations

from http import HTTPStatus

import grpc
import pytest
from kserve import errors as kserve_errors

from predictor import errors

BAD = (HTTPStatus.BAD_REQUEST, grpc.StatusCode.INVALID_ARGUMENT)
INTERNAL = (HTTPStatus.INTERNAL_SERVER_ERROR, grpc.StatusCode.INTERNAL)

CODES = {
    errors.PredictorError: INTERNAL,
    errors.BadRequest: BAD,
    errors.MalformedBody: BAD,
    errors.InvalidTensor: BAD,
    errors.FeatureMismatch: BAD,
    errors.UnknownOutput: BAD,
    errors.ModelRejectedInput: BAD,
    errors.PayloadTooLarge: (
        HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    ),
    errors.ModelNotFound: (HTTPStatus.NOT_FOUND, grpc.StatusCode.NOT_FOUND),
    errors.ModelNotReady: (HTTPStatus.SERVICE_UNAVAILABLE, grpc.StatusCode.UNAVAILABLE),
    errors.InferenceFailed: INTERNAL,
    errors.ModelLoadError: INTERNAL,
    errors.ArtifactNotFound: INTERNAL,
    errors.AmbiguousArtifact: INTERNAL,
    errors.UnsupportedFormat: INTERNAL,
    errors.DigestMismatch: INTERNAL,
    errors.UntrustedTypes: INTERNAL,
}
BAD_REQUESTS = [cls for cls, codes in CODES.items() if issubclass(cls, errors.BadRequest)]
LOAD_ERRORS = [
    errors.ArtifactNotFound,
    errors.AmbiguousArtifact,
    errors.UnsupportedFormat,
    errors.DigestMismatch,
    errors.UntrustedTypes,
]


def _id(cls: type) -> str:
    return cls.__name__


def test_table_covers_every_error_class() -> None:
    """Every PredictorError subclass in the module has an entry above."""
    defined = {
        obj
        for obj in vars(errors).values()
        if isinstance(obj, type) and issubclass(obj, errors.PredictorError)
    }
    assert defined == set(CODES)


@pytest.mark.parametrize(("cls", "codes"), CODES.items(), ids=[c.__name__ for c in CODES])
def test_status_and_grpc_code(cls: type[errors.PredictorError], codes: tuple) -> None:
    """Class and instance carry the documented HTTP status and gRPC code."""
    status, code = codes
    assert cls.status is status
    assert cls.grpc_code is code
    err = cls("boom")
    assert (int(err.status), err.grpc_code) == (int(status), code)


@pytest.mark.parametrize("cls", BAD_REQUESTS, ids=_id)
def test_bad_requests_are_kserve_invalid_input(cls: type[errors.BadRequest]) -> None:
    """KServe's InvalidInput handler (400) catches every BadRequest, and ValueError too."""
    err = cls("shape [2] holds 2 values but the data has 3")
    assert isinstance(err, kserve_errors.InvalidInput)
    assert isinstance(err, ValueError)
    assert isinstance(err, errors.PredictorError)
    assert str(err) == err.reason == "shape [2] holds 2 values but the data has 3"


def test_model_not_found_is_kserve_model_not_found() -> None:
    """Our message survives (KServe's own __init__ would write its own reason)."""
    err = errors.ModelNotFound("no model named 'x'; this server serves 'iris'")
    assert isinstance(err, kserve_errors.ModelNotFound)
    assert str(err) == err.reason == err.message == "no model named 'x'; this server serves 'iris'"
    with pytest.raises(kserve_errors.ModelNotFound):
        raise err


@pytest.mark.parametrize(
    "cls",
    [c for c in CODES if not issubclass(c, errors.BadRequest | errors.ModelNotFound)],
    ids=_id,
)
def test_other_errors_are_not_kserve_client_errors(cls: type[errors.PredictorError]) -> None:
    """Server-side errors must not be answered as 400 / 404 by KServe's handlers."""
    err = cls("x")
    assert not isinstance(err, kserve_errors.InvalidInput)
    assert not isinstance(err, kserve_errors.ModelNotFound)


@pytest.mark.parametrize("cls", LOAD_ERRORS, ids=_id)
def test_load_errors_are_model_load_errors(cls: type[errors.ModelLoadError]) -> None:
    """Start-up catches ModelLoadError alone and still sees every artifact problem."""
    assert issubclass(cls, errors.ModelLoadError)
    assert not issubclass(cls, errors.BadRequest)


@pytest.mark.parametrize("cls", list(CODES), ids=_id)
def test_message_reason_str_kind(cls: type[errors.PredictorError]) -> None:
    """message, reason (read by KServe), str() and args all hold the text; kind names it."""
    err = cls("input 'x': expected FP64, got BYTES")
    assert err.message == err.reason == str(err) == "input 'x': expected FP64, got BYTES"
    assert err.args == ("input 'x': expected FP64, got BYTES",)
    assert err.kind == cls.__name__
