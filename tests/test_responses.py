"""predictor.responses: method results -> V2 outputs -> REST JSON/binary, gRPC, V1."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pytest
from kserve.protocol.infer_type import InferRequest, RequestedOutput

from predictor.responses import build_response, json_values, to_grpc, to_rest_v2, to_v1
from predictor.schema import ModelSchema
from predictor.tensors import DTYPES, _unpack_bytes

CLASSES = ("setosa", "versicolor", "virginica")
PROBA = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]])
LABELS = np.array(["setosa", "virginica"])


def _schema(classes: tuple | None = CLASSES) -> ModelSchema:
    return ModelSchema(4, None, ("predict",), classes, "BYTES", False, "classifier")


def _request(
    request_id: str | None = "req-1",
    parameters: dict | None = None,
    outputs: dict[str, dict] | None = None,
    from_grpc: bool = False,
) -> InferRequest:
    requested = [RequestedOutput(n, p) for n, p in (outputs or {}).items()] or None
    return InferRequest(
        "iris",
        [],
        request_id=request_id,
        parameters=parameters,
        request_outputs=requested,
        from_grpc=from_grpc,
    )


def _response(results: dict[str, Any], request: InferRequest | None = None, **kw: Any):
    return build_response(
        results,
        list(results),
        kw.get("schema", _schema()),
        request or _request(),
        "iris",
        kw.get("version", "abc123"),
    )


def _iris_response(request: InferRequest | None = None):
    return _response({"predict": LABELS, "predict_proba": PROBA}, request)


def _split_binary(body: bytes, length: int) -> tuple[dict, dict[str, np.ndarray]]:
    """Parse a binary-extension response back: the JSON and each binary output's array."""
    doc = orjson.loads(body[:length])
    blobs, offset = {}, length
    for output in doc["outputs"]:
        size = output.get("parameters", {}).get("binary_data_size")
        if size is None:
            continue
        blob = body[offset : offset + size]
        offset += size
        if output["datatype"] == "BYTES":
            array = _unpack_bytes(output["name"], blob)
        else:
            array = np.frombuffer(blob, dtype=DTYPES[output["datatype"]])
        blobs[output["name"]] = array.reshape(output["shape"])
    assert offset == len(body), "binary parts must add up to the body"
    return doc, blobs


# ------------------------------------------------------------------ build_response


@pytest.mark.parametrize(
    ("array", "dtype", "datatype"),
    [
        (np.array([1, 2], dtype=np.int32), np.int64, "INT64"),
        (np.array([1, 2], dtype=np.int8), np.int64, "INT64"),
        (np.array([1, 2], dtype=np.uint8), np.int64, "INT64"),
        (np.array([1, 2], dtype=np.uint64), np.uint64, "UINT64"),
        (np.array([1, 2], dtype=np.int64), np.int64, "INT64"),
        (np.array([0.5, 1.5], dtype=np.float32), np.float64, "FP64"),
        (np.array([0.5, 1.5], dtype=np.float16), np.float64, "FP64"),
        (np.array([0.5, 1.5]), np.float64, "FP64"),
        (np.array(["a", "bc"]), object, "BYTES"),
        (np.array([b"a", b"bc"]), object, "BYTES"),
        (np.array(["a", "bc"], dtype=object), object, "BYTES"),
        (np.array([True, False]), np.bool_, "BOOL"),
        ([1, 2], np.int64, "INT64"),
    ],
    ids=[
        "int32",
        "int8",
        "uint8",
        "uint64",
        "int64",
        "float32",
        "float16",
        "float64",
        "unicode",
        "bytes",
        "object",
        "bool",
        "list",
    ],
)
def test_dtype_normalisation(array: Any, dtype: Any, datatype: str) -> None:
    [output] = _response({"predict": array}).outputs
    assert output._data.dtype == np.dtype(dtype)
    assert output.datatype == datatype
    assert output.shape == [2]
    assert output._data.tolist() == np.asarray(array).astype(dtype).tolist()


def test_outputs_follow_order_and_carry_request_metadata() -> None:
    request = _request("req-9", from_grpc=True)
    results = {"predict": LABELS, "predict_proba": PROBA}
    response = build_response(results, ["predict_proba", "predict"], _schema(), request, "m", "v")
    assert [o.name for o in response.outputs] == ["predict_proba", "predict"]
    assert [o.shape for o in response.outputs] == [[2, 3], [2]]
    assert (response.id, response.model_name, response.model_version) == ("req-9", "m", "v")
    assert response.from_grpc is True


def test_response_id_is_generated_when_request_has_none() -> None:
    first = _response({"predict": LABELS}, _request(None))
    second = _response({"predict": LABELS}, _request(None))
    assert len(first.id) == 32 and int(first.id, 16) >= 0
    assert first.id != second.id


def test_response_ids_differ_in_a_forked_worker() -> None:
    import os

    from predictor.responses import new_response_id

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its ids must not repeat the parent's
        os.write(write, new_response_id().encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    parent = new_response_id()
    assert len(child) == len(parent) == 32
    assert child[:16] != parent[:16]  # a fresh random prefix after fork


@pytest.mark.parametrize(
    ("method", "array", "classes", "expected"),
    [
        ("predict_proba", PROBA, CLASSES, list(CLASSES)),
        ("predict_log_proba", np.log(PROBA), CLASSES, list(CLASSES)),
        ("decision_function", PROBA, CLASSES, list(CLASSES)),
        ("decision_function", np.array([0.3, -1.2]), (0, 1), None),
        ("predict", np.array([[1.0, 2.0], [3.0, 4.0]]), (0, 1), None),
        ("predict", LABELS, CLASSES, None),
        ("transform", PROBA, CLASSES, None),
        ("predict_proba", PROBA, None, None),
    ],
    ids=[
        "proba",
        "log-proba",
        "decision-multiclass",
        "decision-binary-1d",
        "predict-2d",
        "predict",
        "transform",
        "no-classes",
    ],
)
def test_classes_parameter_only_on_2d_scores(
    method: str, array: np.ndarray, classes: tuple | None, expected: list | None
) -> None:
    [output] = _response({method: array}, schema=_schema(classes)).outputs
    if expected is None:
        assert not output.parameters
    else:
        assert output.parameters == {"classes": expected}


# ------------------------------------------------------------------ to_rest_v2


def test_rest_json() -> None:
    body, length = to_rest_v2(_iris_response(), _request())
    assert length is None
    assert orjson.loads(body) == {
        "model_name": "iris",
        "id": "req-1",
        "model_version": "abc123",
        "outputs": [
            {
                "name": "predict",
                "datatype": "BYTES",
                "shape": [2],
                "data": ["setosa", "virginica"],
            },
            {
                "name": "predict_proba",
                "datatype": "FP64",
                "shape": [2, 3],
                "data": PROBA.reshape(-1).tolist(),
                "parameters": {"classes": list(CLASSES)},
            },
        ],
    }


def test_rest_json_without_request_or_version() -> None:
    response = _response({"predict": np.array([1, 2])}, version=None)
    body, length = to_rest_v2(response, None)
    doc = orjson.loads(body)
    assert length is None
    assert "model_version" not in doc
    assert doc["outputs"] == [
        {"name": "predict", "datatype": "INT64", "shape": [2], "data": [1, 2]}
    ]


def test_rest_json_bytes_are_decoded() -> None:
    labels = np.array([b"ok", b"\xff"], dtype=object)
    body, _ = to_rest_v2(_response({"predict": labels}), None)
    assert orjson.loads(body)["outputs"][0]["data"] == ["ok", "\ufffd"]


def test_rest_binary_data_output_for_all() -> None:
    """binary_data_output: every output travels as bytes after the JSON, in order."""
    request = _request(parameters={"binary_data_output": True})
    body, length = to_rest_v2(_iris_response(request), request)
    assert length is not None and body[length - 1 : length] == b"}"
    doc, blobs = _split_binary(body, length)
    assert [o["name"] for o in doc["outputs"]] == ["predict", "predict_proba"]
    assert all("data" not in o for o in doc["outputs"])
    assert doc["outputs"][0]["parameters"] == {"binary_data_size": 4 + 6 + 4 + 9}
    assert doc["outputs"][1]["parameters"] == {
        "classes": list(CLASSES),
        "binary_data_size": PROBA.size * 8,
    }
    assert blobs["predict"].tolist() == [b"setosa", b"virginica"]
    np.testing.assert_array_equal(blobs["predict_proba"], PROBA)


@pytest.mark.parametrize(
    ("parameters", "outputs", "binary"),
    [
        (None, {"predict_proba": {"binary_data": True}}, {"predict_proba"}),
        (None, {"predict": {"binary_data": True}}, {"predict"}),
        ({"binary_data_output": True}, {"predict": {"binary_data": False}}, {"predict_proba"}),
        ({"binary_data_output": False}, {"predict": {"binary_data": True}}, {"predict"}),
        (None, {"predict": {}, "predict_proba": {"other": 1}}, set()),
        ({"binary_data_output": True}, {"predict": {}}, {"predict", "predict_proba"}),
    ],
    ids=[
        "one-output",
        "bytes-output",
        "per-output-false-wins",
        "per-output-true-wins",
        "none",
        "output-without-flag",
    ],
)
def test_rest_binary_per_output(parameters: dict | None, outputs: dict, binary: set[str]) -> None:
    request = _request(parameters=parameters, outputs=outputs)
    body, length = to_rest_v2(_iris_response(request), request)
    if not binary:
        assert length is None
        return
    doc, blobs = _split_binary(body, length)
    assert set(blobs) == binary
    as_json = {o["name"]: o["data"] for o in doc["outputs"] if "data" in o}
    assert set(as_json) == {"predict", "predict_proba"} - binary
    if "predict" in as_json:
        assert as_json["predict"] == ["setosa", "virginica"]
    if "predict_proba" in blobs:
        np.testing.assert_array_equal(blobs["predict_proba"], PROBA)


def test_rest_binary_numeric_types_round_trip() -> None:
    """INT64 and BOOL outputs decode back to the same values from their bytes."""
    request = _request(parameters={"binary_data_output": True})
    results = {"predict": np.array([3, -1], dtype=np.int32), "flags": np.array([True, False])}
    body, length = to_rest_v2(_response(results, request), request)
    doc, blobs = _split_binary(body, length)
    assert [o["datatype"] for o in doc["outputs"]] == ["INT64", "BOOL"]
    assert blobs["predict"].tolist() == [3, -1]
    assert blobs["flags"].tolist() == [True, False]


# ------------------------------------------------------------------ to_grpc


def test_grpc_raw_contents_decode_back() -> None:
    message = to_grpc(_iris_response())
    assert (message.model_name, message.model_version, message.id) == ("iris", "abc123", "req-1")
    assert [o.name for o in message.outputs] == ["predict", "predict_proba"]
    assert [o.datatype for o in message.outputs] == ["BYTES", "FP64"]
    assert [list(o.shape) for o in message.outputs] == [[2], [2, 3]]
    assert len(message.raw_output_contents) == 2
    for output in message.outputs:
        assert not output.HasField("contents")
    labels, proba = message.raw_output_contents
    assert labels == b"\x06\0\0\0setosa\x09\0\0\0virginica"
    np.testing.assert_array_equal(np.frombuffer(proba, dtype=np.float64).reshape(2, 3), PROBA)


def test_grpc_classes_parameter_is_a_json_string() -> None:
    message = to_grpc(_iris_response())
    assert not message.outputs[0].parameters
    param = message.outputs[1].parameters["classes"]
    assert param.WhichOneof("parameter_choice") == "string_param"
    assert orjson.loads(param.string_param) == list(CLASSES)


def test_grpc_integer_classes_stay_integers() -> None:
    response = _response({"predict_proba": PROBA[:, :2]}, schema=_schema((0, 7)))
    param = to_grpc(response).outputs[0].parameters["classes"]
    assert orjson.loads(param.string_param) == [0, 7]


@pytest.mark.parametrize(
    ("array", "dtype"),
    [
        (np.array([[1, 2], [3, 4]], dtype=np.int32), np.int64),
        (np.array([0.25, 0.5], dtype=np.float32), np.float64),
        (np.array([True, False, True]), np.bool_),
        (np.asfortranarray(np.arange(6, dtype=np.float64).reshape(2, 3)), np.float64),
    ],
    ids=["int32", "float32", "bool", "fortran-order"],
)
def test_grpc_numeric_round_trip(array: np.ndarray, dtype: Any) -> None:
    """Bytes are row-major little-endian in the normalised dtype."""
    message = to_grpc(_response({"predict": array}))
    [raw] = message.raw_output_contents
    decoded = np.frombuffer(raw, dtype=dtype).reshape(list(message.outputs[0].shape))
    np.testing.assert_array_equal(decoded, array)


def test_grpc_parameter_types() -> None:
    """Lists/dicts as JSON strings, bools, ints and other values as strings."""
    response = _response({"predict": np.array([1.0])})
    response.outputs[0].parameters = {
        "flag": True,
        "count": 3,
        "name": "x",
        "ratio": 0.5,
        "map": {"a": 1},
    }
    params = to_grpc(response).outputs[0].parameters
    assert params["flag"].bool_param is True
    assert params["count"].int64_param == 3
    assert params["name"].string_param == "x"
    assert params["ratio"].string_param == "0.5"
    assert orjson.loads(params["map"].string_param) == {"a": 1}


def test_grpc_without_version() -> None:
    message = to_grpc(_response({"predict": np.array([1.0])}, version=None))
    assert message.model_version == ""


# ------------------------------------------------------------------ to_v1


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        (np.array([1, 2], dtype=np.int32), [1, 2]),
        (np.array(["setosa", "virginica"]), ["setosa", "virginica"]),
        (np.array([[0.25, 0.75]], dtype=np.float32), [[0.25, 0.75]]),
        (np.array([1.5, np.nan]), [1.5, None]),
        (np.array([True]), [True]),
        ([3, 4], [3, 4]),
    ],
    ids=["int32", "strings", "scores", "nan-is-null", "bool", "list"],
)
def test_v1(result: Any, expected: list) -> None:
    assert orjson.loads(to_v1(result)) == {"predictions": expected}


# ------------------------------------------------------------ json_values


def _floats() -> np.ndarray:
    rng = np.random.default_rng(7)
    spread = rng.standard_normal(20000) * 10.0 ** rng.integers(-300, 300, 20000)
    special = [0.0, -0.0, 1.0, 0.1, 1e16, 1e-7, 5e-324, 1.7976931348623157e308]
    return np.concatenate([spread, special, [np.nan, np.inf, -np.inf]])


@pytest.mark.parametrize(
    "array",
    [
        _floats(),
        np.arange(12.0).reshape(3, 4),
        np.arange(12.0).reshape(3, 4).T,  # not C-contiguous
        np.array([-(2**63), 2**63 - 1], dtype=np.int64),
        np.array([2**64 - 1, 0], dtype=np.uint64),
        np.array([[True, False]]),
        np.zeros((0, 3)),
    ],
    ids=["floats", "matrix", "transposed", "int64-limits", "uint64-max", "bool", "no-rows"],
)
def test_numeric_arrays_serialise_as_their_python_values_do(array: np.ndarray) -> None:
    fast = orjson.dumps(json_values(array), option=orjson.OPT_SERIALIZE_NUMPY)
    assert fast == orjson.dumps(array.tolist())
    assert isinstance(json_values(array), np.ndarray)  # no Python object per value


def test_object_arrays_become_lists_with_bytes_decoded() -> None:
    array = np.array([[b"a", "b"], ["c", b"\xff"]], dtype=object)
    assert json_values(array) == [["a", "b"], ["c", "\ufffd"]]


def test_v1_byte_string_labels_are_text() -> None:
    assert orjson.loads(to_v1(np.array([b"yes", b"no"]))) == {"predictions": ["yes", "no"]}


def test_rest_json_1000_labels_match_the_list_encoding() -> None:
    labels = np.arange(1000, dtype=np.int64) % 3
    body, json_length = to_rest_v2(_response({"predict": labels}), None)
    assert json_length is None
    assert orjson.loads(body)["outputs"][0]["data"] == labels.tolist()
