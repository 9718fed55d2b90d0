"""predictor.tensors: V2 REST bodies (JSON and binary) and tensors to numpy, with checks."""

from __future__ import annotations

import re
import struct
from typing import Any

import numpy as np
import orjson
import pytest
from kserve.protocol.infer_type import InferInput

from predictor import arrayjson
from predictor.errors import BadRequest, InvalidTensor, MalformedBody
from predictor.tensors import (
    DTYPES,
    _unpack_bytes,
    pack_bytes,
    parse_json,
    parse_rest_v2,
    to_numpy,
)


def _body(**doc: Any) -> bytes:
    return orjson.dumps(doc)


def _one(name: str = "x", shape: Any = (2,), datatype: Any = "FP64", **extra: Any) -> dict:
    return {"name": name, "shape": list(shape), "datatype": datatype, **extra}


def _tensor(datatype: str, shape: list[int], data: Any = None, raw: bytes | None = None):
    tensor = InferInput(name="x", shape=shape, datatype=datatype)
    tensor._data = data
    tensor._raw_data = raw
    return tensor


def _binary(inputs: list[tuple[dict, bytes]], **doc: Any) -> tuple[bytes, str]:
    """A binary-extension body: JSON header then each input's bytes, and the header length."""
    items = []
    for item, blob in inputs:
        params = {**item.get("parameters", {}), "binary_data_size": len(blob)}
        items.append({**item, "parameters": params})
    head = orjson.dumps({"inputs": items, **doc})
    return head + b"".join(blob for _, blob in inputs), str(len(head))


# ------------------------------------------------------------------ parse_rest_v2: JSON


def test_parse_json_request() -> None:
    body = _body(
        id="req-1",
        inputs=[_one("a", [2, 2], data=[[1, 2], [3, 4]]), _one("s", [1], "BYTES", data=["hi"])],
        outputs=[{"name": "predict_proba", "parameters": {"binary_data": True}}],
        parameters={"binary_data_output": False},
    )
    request = parse_rest_v2(body, None, "iris")
    assert (request.model_name, request.id) == ("iris", "req-1")
    assert request.parameters == {"binary_data_output": False}
    assert [(t.name, t.datatype, list(t.shape)) for t in request.inputs] == [
        ("a", "FP64", [2, 2]),
        ("s", "BYTES", [1]),
    ]
    assert [(o.name, o.parameters) for o in request.request_outputs] == [
        ("predict_proba", {"binary_data": True})
    ]
    np.testing.assert_array_equal(to_numpy(request.inputs[0]), [[1.0, 2.0], [3.0, 4.0]])
    assert to_numpy(request.inputs[1]).tolist() == ["hi"]


@pytest.mark.parametrize(
    ("request_id", "expected"), [(None, None), ("", None), (42, "42"), ("a", "a")]
)
def test_request_id_is_a_string_or_none(request_id: Any, expected: str | None) -> None:
    doc: dict[str, Any] = {"inputs": [_one(data=[1, 2])]}
    if request_id is not None:
        doc["id"] = request_id
    assert parse_rest_v2(orjson.dumps(doc), None, "m").id == expected


@pytest.mark.parametrize("outputs", [None, []], ids=["absent", "empty"])
def test_no_requested_outputs(outputs: Any) -> None:
    doc: dict[str, Any] = {"inputs": [_one(data=[1, 2])]}
    if outputs is not None:
        doc["outputs"] = outputs
    assert parse_rest_v2(orjson.dumps(doc), None, "m").request_outputs is None


def test_output_without_parameters() -> None:
    body = _body(inputs=[_one(data=[1, 2])], outputs=[{"name": "predict"}])
    [output] = parse_rest_v2(body, None, "m").request_outputs
    assert (output.name, output.parameters) == ("predict", {})


def test_nan_and_infinity_literals_fall_back_to_stdlib() -> None:
    """Python's json.dumps writes NaN / Infinity; orjson refuses them, the stdlib reads them."""
    body = b'{"inputs": [{"name": "x", "shape": [3], "datatype": "FP64", '
    body += b'"data": [NaN, Infinity, -Infinity]}]}'
    values = to_numpy(parse_rest_v2(body, None, "m").inputs[0])
    assert np.isnan(values[0])
    assert values[1:].tolist() == [np.inf, -np.inf]


def test_null_is_nan_for_floats() -> None:
    body = _body(inputs=[_one(data=[None, 1.5])])
    values = to_numpy(parse_rest_v2(body, None, "m").inputs[0])
    assert np.isnan(values[0]) and values[1] == 1.5


# ------------------------------------------------------------------ parse_rest_v2: binary


def test_binary_fp64_and_bytes() -> None:
    """binary_data_size slices follow the JSON header in input order."""
    matrix = np.arange(6, dtype=np.float64).reshape(2, 3) / 4
    words = np.array(["north", "süd", ""], dtype=object)
    body, length = _binary(
        [(_one("m", [2, 3]), matrix.tobytes()), (_one("w", [3], "BYTES"), pack_bytes(words))],
        parameters={"binary_data_output": True},
    )
    request = parse_rest_v2(body, length, "m")
    assert request.parameters == {"binary_data_output": True}
    m, w = (to_numpy(t) for t in request.inputs)
    assert m.dtype == np.float64
    np.testing.assert_array_equal(m, matrix)
    assert w.tolist() == [b"north", "süd".encode(), b""]
    assert request.inputs[0].parameters["binary_data_size"] == 48


def test_binary_mixed_with_json_data() -> None:
    """An input with 'data' needs no binary bytes; the other input's bytes still line up."""
    ints = np.array([7, -8], dtype=np.int32)
    head = orjson.dumps(
        {
            "inputs": [
                _one("j", [1], data=[0.5]),
                _one("b", [2], "INT32", parameters={"binary_data_size": 8}),
            ]
        }
    )
    request = parse_rest_v2(head + ints.tobytes(), str(len(head)), "m")
    assert to_numpy(request.inputs[0]).tolist() == [0.5]
    assert to_numpy(request.inputs[1]).tolist() == [7, -8]
    assert to_numpy(request.inputs[1]).dtype == np.int32


def test_header_length_equal_to_body_means_no_binary() -> None:
    body = _body(inputs=[_one(data=[1, 2])])
    assert to_numpy(parse_rest_v2(body, str(len(body)), "m").inputs[0]).tolist() == [1.0, 2.0]


JSON_OK = _body(inputs=[_one(data=[1, 2])])
SIXTEEN, SIXTEEN_HEADER = _binary([(_one(), b"\0" * 16)])  # one input of 16 binary bytes

MALFORMED: list[tuple[str, bytes, str | None, str]] = [
    ("empty", b"", None, "request body is empty; expected a JSON object"),
    ("blank", b"  \n ", None, "request body is empty"),
    ("not-json", b"{inputs: 1}", None, "request body is not valid JSON: "),
    ("not-object", b"[1, 2]", None, "request body must be a JSON object, got list"),
    ("no-inputs", b"{}", None, "needs 'inputs': a non-empty list of tensors"),
    ("inputs-empty", _body(inputs=[]), None, "non-empty list of tensors {name, shape, "),
    ("inputs-object", _body(inputs={"a": 1}), None, "got {'a': 1}"),
    ("input-not-object", _body(inputs=[5]), None, "inputs[0] must be an object, got 5"),
    ("no-name", _body(inputs=[{"shape": [1]}]), None, "inputs[0] needs a 'name' string, got None"),
    ("empty-name", _body(inputs=[_one(name="")]), None, "inputs[0] needs a 'name' string, got ''"),
    ("name-int", _body(inputs=[_one(name=3)]), None, "needs a 'name' string, got 3"),
    (
        "input-params",
        _body(inputs=[_one(parameters="x", data=[1, 2])]),
        None,
        "input 'x': 'parameters' must be an object",
    ),
    ("no-data", _body(inputs=[_one()]), None, "input 'x' has neither 'data' nor binary_data_size"),
    (
        "outputs-not-list",
        _body(inputs=[_one(data=[1, 2])], outputs={"name": "predict"}),
        None,
        "'outputs' must be a list of {name} objects",
    ),
    (
        "output-no-name",
        _body(inputs=[_one(data=[1, 2])], outputs=[{"nom": "predict"}]),
        None,
        "outputs[0] must be an object with a 'name' string",
    ),
    (
        "params-not-object",
        _body(inputs=[_one(data=[1, 2])], parameters=[1]),
        None,
        "'parameters' must be an object, got [1]",
    ),
    ("header-not-int", JSON_OK, "12a", "inference-header-content-length must be an integer"),
    ("header-zero", JSON_OK, "0", f"is 0 but the body has {len(JSON_OK)} bytes"),
    (
        "header-too-long",
        JSON_OK,
        str(len(JSON_OK) + 1),
        f"is {len(JSON_OK) + 1} but the body has {len(JSON_OK)} bytes",
    ),
    (
        "binary-size-too-big",
        SIXTEEN[:-1],
        SIXTEEN_HEADER,
        "input 'x': binary_data_size 16 does not fit the 15 binary bytes left in the body",
    ),
]


@pytest.mark.parametrize(
    ("body", "header", "fragment"), [c[1:] for c in MALFORMED], ids=[c[0] for c in MALFORMED]
)
def test_malformed_bodies(body: bytes, header: str | None, fragment: str) -> None:
    with pytest.raises(MalformedBody) as caught:
        parse_rest_v2(body, header, "m")
    assert fragment in str(caught.value)


@pytest.mark.parametrize(
    ("size", "shown"), [(-1, "-1"), ("8", "'8'"), (1.5, "1.5")], ids=["negative", "str", "float"]
)
def test_binary_data_size_must_be_a_non_negative_int(size: Any, shown: str) -> None:
    head = orjson.dumps({"inputs": [_one(parameters={"binary_data_size": size})]})
    with pytest.raises(MalformedBody, match=re.escape(f"binary_data_size {shown} does not fit")):
        parse_rest_v2(head + b"\0" * 16, str(len(head)), "m")


def test_leftover_binary_bytes() -> None:
    body, length = _binary([(_one(), np.zeros(2).tobytes())])
    with pytest.raises(MalformedBody) as caught:
        parse_rest_v2(body + b"extra", length, "m")
    assert "body has 21 bytes of binary data but the inputs' binary_data_size add up to 16" in str(
        caught.value
    )


def test_binary_without_header_is_not_json() -> None:
    body, _ = _binary([(_one(), np.zeros(2).tobytes())])
    with pytest.raises(MalformedBody, match="is not valid JSON"):
        parse_rest_v2(body, None, "m")


@pytest.mark.parametrize(
    ("item", "fragment"),
    [
        (_one(datatype="FLOAT64", data=[1, 2]), "datatype 'FLOAT64' is not a V2 datatype"),
        (_one(datatype=None, data=[1, 2]), "datatype None is not a V2 datatype; expected one of"),
        ({"name": "x", "datatype": "FP64", "data": [1]}, "shape must be a list of non-negative"),
        (_one(shape=[], data=[]), "shape must be a list of non-negative integers, got []"),
        (_one(shape=[-1, 2], data=[1, 2]), "got [-1, 2]"),
        (_one(shape=[1.0], data=[1]), "got [1.0]"),
        (_one(shape=[True], data=[1]), "got [True]"),
        ({**_one(data=[1, 2]), "shape": "2"}, "got '2'"),
    ],
    ids=["datatype", "no-datatype", "no-shape", "empty", "negative", "float", "bool", "string"],
)
def test_bad_headers_are_invalid_tensors(item: dict, fragment: str) -> None:
    """Datatype / shape problems are InvalidTensor (still a 400), named after the input."""
    with pytest.raises(InvalidTensor) as caught:
        parse_rest_v2(_body(inputs=[item]), None, "m")
    assert str(caught.value).startswith("input 'x': ")
    assert fragment in str(caught.value)


def test_parse_json_names_where() -> None:
    with pytest.raises(MalformedBody, match=r"^V1 body is empty"):
        parse_json(b"", where="V1 body")
    assert np.isnan(parse_json(b'{"a": NaN}')["a"])


# ------------------------------------------------------------------ to_numpy


@pytest.mark.parametrize("datatype", [d for d in DTYPES if d not in ("BYTES", "BOOL")])
def test_to_numpy_raw_and_json_agree(datatype: str) -> None:
    """Every numeric datatype: raw bytes and JSON data give the same array and dtype."""
    dtype = DTYPES[datatype]
    values = np.array([[0, 1, 2], [3, 4, 5]], dtype=dtype)
    raw = to_numpy(_tensor(datatype, [2, 3], raw=values.tobytes()))
    js = to_numpy(_tensor(datatype, [2, 3], data=values.tolist()))
    flat = to_numpy(_tensor(datatype, [2, 3], data=values.reshape(-1).tolist()))
    for array in (raw, js, flat):
        assert array.dtype == dtype
        assert array.shape == (2, 3)
        np.testing.assert_array_equal(array, values)


def test_to_numpy_bool() -> None:
    raw = to_numpy(_tensor("BOOL", [3], raw=np.array([True, False, True]).tobytes()))
    js = to_numpy(_tensor("BOOL", [1, 3], data=[[True, False, True]]))
    assert raw.dtype == js.dtype == np.bool_
    assert raw.tolist() == [True, False, True]
    assert js.tolist() == [[True, False, True]]


def test_to_numpy_bytes_json() -> None:
    array = to_numpy(_tensor("BYTES", [2, 1], data=[["a"], [b"b"]]))
    assert array.dtype == object
    assert array.tolist() == [["a"], [b"b"]]


def test_to_numpy_empty_batch() -> None:
    array = to_numpy(_tensor("FP64", [0, 3], data=[]))
    assert array.shape == (0, 3)


@pytest.mark.parametrize(
    ("datatype", "shape", "raw", "fragment"),
    [
        ("FP64", [2], b"\0" * 15, "shape [2] of FP64 needs 16 bytes of binary data, got 15"),
        ("INT32", [2, 2], b"\0" * 8, "shape [2, 2] of INT32 needs 16 bytes of binary data, got 8"),
        (
            "BYTES",
            [3],
            pack_bytes(np.array(["a", "b"])),
            "shape [3] holds 3 values but the data has 2",
        ),
        ("BYTES", [1], b"\1\0", "BYTES binary data ends inside a length prefix"),
        ("BYTES", [1], b"\5\0\0\0abc", "a BYTES element runs past the binary data"),
    ],
    ids=["fp64-short", "int32-short", "bytes-count", "bytes-prefix", "bytes-element"],
)
def test_to_numpy_raw_size_mismatch(
    datatype: str, shape: list[int], raw: bytes, fragment: str
) -> None:
    with pytest.raises(InvalidTensor) as caught:
        to_numpy(_tensor(datatype, shape, raw=raw))
    assert str(caught.value) == f"input 'x': {fragment}"


@pytest.mark.parametrize(
    ("datatype", "shape", "data", "fragment"),
    [
        ("FP64", [2, 2], [1, 2, 3], "input 'x': shape [2, 2] holds 4 values but the data has 3"),
        ("FP64", [1], [[1, 2]], "input 'x': shape [1] holds 1 values but the data has 2"),
        ("BYTES", [2], ["a"], "input 'x': shape [2] holds 2 values but the data has 1"),
        ("FP64", [1], None, "input 'x' has no data"),
        ("BOOL", [2], [True, 1], "datatype BOOL, so its data must be booleans; found 1"),
        ("BOOL", [1], ["true"], "must be booleans; found 'true'"),
        ("BOOL", [1], [0.0], "must be booleans; found 0.0"),
        ("BYTES", [2], ["a", 1], "input 'x' is BYTES, so its data must be strings; found 1"),
        ("BYTES", [1], [None], "must be strings; found None"),
        ("FP64", [2], [1, "abc"], "datatype FP64, so its data must be numbers in nested lists"),
        ("INT64", [1], [{"v": 1}], "must be numbers in nested lists of equal length; found {'v'"),
        ("INT64", [1], [None], "datatype INT64, so its data must be numbers"),
        ("UINT8", [1], [300], "input 'x': a value does not fit datatype UINT8"),
        ("UINT64", [1], [-1], "a value does not fit datatype UINT64"),
        ("INT64", [1], [2**64], "a value does not fit datatype INT64"),
        ("INT8", [1], [-129], "a value does not fit datatype INT8"),
        ("FP64", [3], [[1, 2], [3]], "in nested lists of equal length; ("),
        ("FP64", [2], [[1], 2], "tensor data nests lists unevenly"),
        ("FP64", [2], [1, [2]], "tensor data nests lists unevenly"),
        ("BYTES", [2], [["a"], "b"], "tensor data nests lists unevenly"),
    ],
    ids=[
        "count",
        "count-nested",
        "bytes-count",
        "no-data",
        "bool-int",
        "bool-str",
        "bool-float",
        "bytes-int",
        "bytes-null",
        "fp64-str",
        "int-object",
        "int-null",
        "uint8-overflow",
        "uint64-negative",
        "int64-overflow",
        "int8-underflow",
        "ragged",
        "uneven-list-first",
        "uneven-scalar-first",
        "bytes-uneven",
    ],
)
def test_to_numpy_json_errors(datatype: str, shape: list[int], data: Any, fragment: str) -> None:
    with pytest.raises(InvalidTensor) as caught:
        to_numpy(_tensor(datatype, shape, data=data))
    assert fragment in str(caught.value)


def test_to_numpy_checks_header() -> None:
    with pytest.raises(InvalidTensor, match="datatype 'STRING' is not a V2 datatype"):
        to_numpy(_tensor("STRING", [1], data=["a"]))


def test_to_numpy_grpc_repeated_field() -> None:
    """gRPC contents arrive as protobuf repeated fields, not lists."""
    from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb

    contents = pb.InferTensorContents(fp64_contents=[1.5, 2.5])
    assert to_numpy(_tensor("FP64", [2], data=contents.fp64_contents)).tolist() == [1.5, 2.5]


def test_float32_overflow_becomes_infinity() -> None:
    """Documented: too large for FP32 is infinity (codec rejects it for most models)."""
    with pytest.warns(RuntimeWarning):
        array = to_numpy(_tensor("FP32", [1], data=[1e300]))
    assert array.dtype == np.float32 and np.isinf(array[0])


@pytest.mark.parametrize(
    ("datatype", "data"),
    [("INT64", [1.5]), ("FP64", ["1.5"]), ("INT64", ["7"]), ("FP64", [True])],
    ids=["int-truncates-float", "fp64-numeric-string", "int-numeric-string", "fp64-bool"],
)
def test_numeric_datatypes_reject_non_numbers(datatype: str, data: list[Any]) -> None:
    """INT64 [1.5] must not become 1; FP64 ["1.5"] not 1.5; FP64 [true] not 1.0."""
    expected = "whole numbers" if data == [1.5] else "numbers"
    with pytest.raises(InvalidTensor, match=f"datatype {datatype}, so its data must be {expected}"):
        to_numpy(_tensor(datatype, [1], data=data))


@pytest.mark.parametrize("data", [5, 1.5, True, "12"], ids=["int", "float", "bool", "string"])
def test_scalar_data_is_a_bad_request(data: Any) -> None:
    """'data': 5 -> list(5) TypeError; 'data': "12" is read as [1.0, 2.0]."""
    body = _body(inputs=[_one(shape=[2], data=data)])
    with pytest.raises(BadRequest, match="data"):
        to_numpy(parse_rest_v2(body, None, "m").inputs[0])


# ------------------------------------------------------------------ BYTES packing


@pytest.mark.parametrize(
    "values",
    [["a", "bc", ""], ["süd", "日本"], [b"\x00\xff", b"raw"], []],
    ids=["ascii", "utf8", "binary", "empty"],
)
def test_pack_unpack_round_trip(values: list[Any]) -> None:
    array = np.empty(len(values), dtype=object)
    array[:] = values
    packed = pack_bytes(array)
    as_bytes = [v if isinstance(v, bytes) else v.encode() for v in values]
    assert packed == b"".join(struct.pack("<I", len(v)) + v for v in as_bytes)
    unpacked = _unpack_bytes("x", packed)
    assert unpacked.dtype == object
    assert unpacked.tolist() == as_bytes


def test_pack_bytes_is_row_major_and_stringifies() -> None:
    array = np.array([["a", "b"], ["c", "d"]], dtype=object)
    assert _unpack_bytes("x", pack_bytes(array)).tolist() == [b"a", b"b", b"c", b"d"]
    assert pack_bytes(np.array([12, 3.5], dtype=object)) == b"\2\0\0\0" + b"12\3\0\0\0" + b"3.5"


@pytest.mark.parametrize(
    ("datatype", "data"),
    [("FP64", [True, 1.5]), ("FP32", [[1.0, 2.0], [False, 3.0]]), ("INT64", [1, True])],
    ids=["fp64-true-among-floats", "fp32-false-nested", "int64-true-among-ints"],
)
def test_a_boolean_among_numbers_is_a_bad_request(datatype: str, data: list[Any]) -> None:
    """numpy alone would read [true, 1.5] as [1.0, 1.5]: the body's booleans are looked for."""
    shape = [len(data), len(data[0])] if isinstance(data[0], list) else [len(data)]
    body = orjson.dumps(
        {"inputs": [{"name": "x", "shape": shape, "datatype": datatype, "data": data}]}
    )
    with pytest.raises(InvalidTensor) as caught:
        parse_rest_v2(body, None, "m")
    assert str(caught.value) == (
        f"input 'x' has datatype {datatype}, so its data must be numbers in nested lists of "
        f"equal length; found {'False' if datatype == 'FP32' else 'True'}"
    )


def test_a_boolean_in_a_big_body_is_a_bad_request_too() -> None:
    """Above arrayjson.MIN_BYTES numeric data goes straight to numpy; a boolean there
    sends the body to the general parser, whose check reports it."""
    data: list[Any] = [0.5] * 2000
    data[1234] = True
    body = orjson.dumps(
        {"inputs": [{"name": "x", "shape": [1000, 2], "datatype": "FP64", "data": data}]}
    )
    assert len(body) > arrayjson.MIN_BYTES
    with pytest.raises(InvalidTensor, match=r"input 'x' has datatype FP64.*found True"):
        parse_rest_v2(body, None, "m")
    data[1234] = 1.5
    request = parse_rest_v2(
        orjson.dumps(
            {"inputs": [{"name": "x", "shape": [1000, 2], "datatype": "FP64", "data": data}]}
        ),
        None,
        "m",
    )
    assert isinstance(request.inputs[0]._data, np.ndarray)  # the fast path, no scan
    assert to_numpy(request.inputs[0])[617].tolist() == [1.5, 0.5]


def test_booleans_elsewhere_in_the_body_leave_numeric_data_alone() -> None:
    doc = {
        "inputs": [
            {"name": "x", "shape": [2], "datatype": "FP64", "data": [1, 2.5]},
            {"name": "flag", "shape": [2], "datatype": "BOOL", "data": [True, False]},
        ],
        "parameters": {"binary_data_output": True},
    }
    request = parse_rest_v2(orjson.dumps(doc), None, "m")
    assert to_numpy(request.inputs[0]).tolist() == [1.0, 2.5]
    assert to_numpy(request.inputs[1]).tolist() == [True, False]


def test_a_datatype_that_is_not_a_string_is_a_400() -> None:
    body = _body(inputs=[_one(datatype=[], data=[1, 2])])
    with pytest.raises(InvalidTensor, match=r"input 'x': datatype \[\] is not a V2 datatype"):
        parse_rest_v2(body, None, "m")  # before: TypeError (unhashable), a 500
