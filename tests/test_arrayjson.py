"""predictor.arrayjson: big V2 JSON bodies parsed straight into numpy, only where exact."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pytest

from predictor import arrayjson
from predictor.errors import InvalidTensor
from predictor.tensors import parse_rest_v2, to_numpy

PAD = "p" * arrayjson.MIN_BYTES  # a parameter that makes any body big enough


def _big(data: Any, datatype: str = "FP64", shape: list[int] | None = None, **extra: Any) -> bytes:
    flat = np.asarray(data, dtype=object).reshape(-1) if isinstance(data, list) else []
    item = {"name": "x", "shape": shape or [len(flat)], "datatype": datatype, "data": data}
    return orjson.dumps({"inputs": [item], "parameters": {"pad": PAD}, **extra})


def _general(body: bytes, monkeypatch: pytest.MonkeyPatch) -> np.ndarray:
    """What the orjson path makes of the body."""
    with monkeypatch.context() as m:
        m.setattr(arrayjson, "MIN_BYTES", 1 << 60)
        return to_numpy(parse_rest_v2(body, None, "m").inputs[0])


def test_flat_numbers_become_an_array_without_python_floats() -> None:
    values = np.random.default_rng(0).normal(size=4000)
    doc = arrayjson.parse_v2(_big(values.tolist(), shape=[1000, 4]))
    assert doc is not None
    data = doc["inputs"][0]["data"]
    assert isinstance(data, np.ndarray) and data.dtype == np.float64
    np.testing.assert_array_equal(data, values)  # every digit orjson would read
    assert doc["parameters"] == {"pad": PAD}
    assert doc["inputs"][0]["shape"] == [1000, 4]


@pytest.mark.parametrize(
    ("datatype", "data"),
    [
        ("FP64", [1, 2.5, -0.0, 1e-300, 3]),
        ("FP32", [0.1, 2, 3.4e38]),
        ("FP16", [0.5, 1, 65504]),
        ("INT64", [-(2**63), 2**63 - 1, 0]),
        ("INT32", [-5, 7]),
        ("INT8", [-128, 127]),
        ("UINT8", [0, 255]),
        ("UINT64", [0, 2**63 - 1]),
    ],
)
def test_same_tensor_as_the_general_path(
    datatype: str, data: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    body = _big(data, datatype)
    doc = arrayjson.parse_v2(body)
    assert doc is not None and isinstance(doc["inputs"][0]["data"], np.ndarray)
    fast = to_numpy(parse_rest_v2(body, None, "m").inputs[0])
    general = _general(body, monkeypatch)
    assert fast.dtype == general.dtype == np.dtype(datatype.lower().replace("fp", "float"))
    np.testing.assert_array_equal(fast, general)


@pytest.mark.parametrize(
    "body",
    [
        _big([[1, 2], [3, 4]], shape=[2, 2]),  # nested: numpy checks it is even
        _big([[1, 2], [3]], shape=[3]),  # ragged
        _big([1, [2]], shape=[2]),
        _big([[], [1, 2]], shape=[2]),  # as many values as top-level items, still nested
        _big([1.0, 2.0], "INT64"),  # a whole float in an integer tensor: numpy decides
        _big([True, 1.0]),
        _big([None, 1.0]),
        _big([1.0, 2.0], id="a[b"),  # a '[' in a string: cannot tell, so do not guess
        _big([1.0]).replace(b"1.0", b"NaN"),  # a Python-style literal
        _big([1.0]).replace(b"1.0", b"1e400"),  # out of double range
        _big([7], "UINT64").replace(b"[7]", str([2**64]).encode()),
        _big([2**60 + 1, 1.5], "FP32"),  # via float64 this int would round twice
        _big([1.0]).replace(b'"parameters"', b'"inputs":[],"parameters"'),  # duplicate key
        _big([1.0])[:-1],  # not JSON
        orjson.dumps([{"pad": PAD}]),  # not an object
        orjson.dumps({"inputs": {"pad": PAD}}),
        orjson.dumps({"inputs": [1.0], "pad": PAD}),
        orjson.dumps({"inputs": [{"name": "x", "datatype": "FP64", "data": [1.0]}]}),  # small
    ],
    ids=[
        "nested",
        "ragged",
        "uneven",
        "empty-row",
        "float-in-int",
        "bool",
        "null",
        "bracket-in-string",
        "nan-literal",
        "huge-float",
        "beyond-uint64",
        "big-int-in-fp32",
        "duplicate-key",
        "invalid",
        "array",
        "inputs-object",
        "input-not-object",
        "small",
    ],
)
def test_anything_not_exact_is_left_to_the_general_parser(body: bytes) -> None:
    assert arrayjson.parse_v2(body) is None


@pytest.mark.parametrize("datatype", ["BYTES", "BOOL"])
def test_bytes_and_bool_tensors_stay_python_lists(datatype: str) -> None:
    data = ["a", "b"] if datatype == "BYTES" else [True, False]
    doc = arrayjson.parse_v2(_big(data, datatype))
    assert doc is not None and doc["inputs"][0]["data"] == data


def test_mixed_inputs_and_outputs_are_kept() -> None:
    body = orjson.dumps(
        {
            "id": "r1",
            "inputs": [
                {"name": "a", "shape": [2], "datatype": "FP32", "data": [1.5, 2]},
                {"name": "s", "shape": [1], "datatype": "BYTES", "data": ["t"]},
            ],
            "outputs": [{"name": "predict", "parameters": {"binary_data": True}}],
            "parameters": {"pad": PAD, "list": [1, [2]]},
        }
    )
    request = parse_rest_v2(body, None, "m")
    assert request.id == "r1"
    assert [o.name for o in request.request_outputs] == ["predict"]
    assert request.request_outputs[0].parameters == {"binary_data": True}
    assert to_numpy(request.inputs[0]).tolist() == [1.5, 2.0]
    assert to_numpy(request.inputs[1]).tolist() == ["t"]
    doc = arrayjson.parse_v2(body)
    assert doc is not None and isinstance(doc["inputs"][0]["data"], np.ndarray)


@pytest.mark.parametrize(
    ("datatype", "shape", "data", "fragment"),
    [
        ("UINT8", [2], [1, 300], "input 'x': a value does not fit datatype UINT8 (range 0..255)"),
        ("INT8", [1], [-129], "a value does not fit datatype INT8"),
        ("UINT32", [1], [-1], "a value does not fit datatype UINT32"),
        ("INT64", [1], [1.5], "datatype INT64, so its data must be whole numbers; found 1.5"),
        ("FP64", [3], [1.0, 2.0], "input 'x': shape [3] holds 3 values but the data has 2"),
        ("FP64", [3], [[1, 2], [3]], "in nested lists of equal length"),
        ("FP64", [2], [1, [2]], "tensor data nests lists unevenly"),
        ("FP64", [1], [True], "so its data must be numbers in nested lists"),
    ],
    ids=["uint8", "int8", "uint32-negative", "int-fraction", "count", "ragged", "uneven", "bool"],
)
def test_big_bodies_get_the_same_errors(
    datatype: str, shape: list[int], data: Any, fragment: str
) -> None:
    with pytest.raises(InvalidTensor) as caught:
        to_numpy(parse_rest_v2(_big(data, datatype, shape), None, "m").inputs[0])
    assert fragment in str(caught.value)
