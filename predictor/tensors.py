"""V2 tensors on the wire <-> numpy arrays, with every check that needs no model.

REST bodies are JSON, optionally followed by binary tensor data (the binary tensor
extension: ``Inference-Header-Content-Length`` gives the JSON part's length). gRPC
tensors arrive as ``contents`` or ``raw_input_contents``; both reach us as KServe
``InferInput`` objects. Responses always carry ``raw_output_contents`` over gRPC.
"""

from __future__ import annotations

import math
import struct
from typing import Any

import numpy as np
import orjson
from kserve.protocol.infer_type import InferInput, InferRequest, RequestedOutput

from predictor import arrayjson
from predictor.errors import InvalidTensor, MalformedBody

DTYPES: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32),
    "UINT64": np.dtype(np.uint64),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16),
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
    "BYTES": np.dtype(object),
}
NUMERIC_DATATYPES = frozenset(DTYPES) - {"BYTES"}
HEADER_LENGTH = "inference-header-content-length"
MAX_NAME = 256  # longest tensor name or request id we accept (and echo)


def brief(value: Any) -> str:
    """A client value for an error message: its repr, cut to 40 characters."""
    text = repr(value)
    return (text[:40] + "...") if len(text) > 43 else text


def parse_json(body: bytes, where: str = "request body") -> Any:
    """JSON with orjson; NaN/Infinity literals (Python clients send them) via the stdlib."""
    if not body or not body.strip():
        raise MalformedBody(f"{where} is empty; expected a JSON object")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as err:
        if b"NaN" in body or b"Infinity" in body:  # Python's json.dumps writes these
            import json

            try:
                return json.loads(body)
            except (ValueError, UnicodeDecodeError, RecursionError):
                pass
        raise MalformedBody(f"{where} is not valid JSON: {err}") from err


def parse_rest_v2(body: bytes, header_length: str | None, model_name: str) -> InferRequest:
    """A V2 REST body (JSON, or JSON + binary tensors) as a KServe ``InferRequest``."""
    binary = b""
    if header_length is not None:
        try:
            json_length = int(header_length)
        except ValueError as err:
            raise MalformedBody(
                f"header {HEADER_LENGTH} must be an integer, got {header_length!r}"
            ) from err
        if not 0 < json_length <= len(body):
            raise MalformedBody(
                f"header {HEADER_LENGTH} is {json_length} but the body has {len(body)} bytes"
            )
        body, binary = body[:json_length], body[json_length:]
    doc = arrayjson.parse_v2(body)  # numeric data straight to numpy, where that is exact
    if doc is None:
        doc = parse_json(body)
    if not isinstance(doc, dict):
        raise MalformedBody(f"request body must be a JSON object, got {type(doc).__name__}")
    raw_inputs = doc.get("inputs")
    if not isinstance(raw_inputs, list) or not raw_inputs:
        raise MalformedBody(
            "request body needs 'inputs': a non-empty list of tensors "
            f"{{name, shape, datatype, data}}; got {brief(raw_inputs)}"
        )
    offset = 0
    inputs = []
    for index, item in enumerate(raw_inputs):
        tensor, offset = _rest_input(item, index, binary, offset)
        inputs.append(tensor)
    # numpy would read [true, 1.5] as [1.0, 1.5]; only data parsed into lists (orjson) can
    # hold booleans (the numpy fast path rejects them), so only then is the body scanned
    listed = [t for t in inputs if isinstance(t._data, list)]
    if listed and (b"true" in body or b"false" in body):
        for tensor in listed:
            _reject_booleans(tensor)
    if offset != len(binary):
        raise MalformedBody(
            f"body has {len(binary)} bytes of binary data but the inputs' "
            f"binary_data_size add up to {offset}"
        )
    outputs = _requested_outputs(doc.get("outputs"))
    params = doc.get("parameters")
    if params is not None and not isinstance(params, dict):
        raise MalformedBody(f"'parameters' must be an object, got {brief(params)}")
    request_id = doc.get("id")
    if request_id is not None and (
        not isinstance(request_id, str | int) or isinstance(request_id, bool)
    ):
        raise MalformedBody(f"'id' must be a string, got {brief(request_id)}")
    if request_id is not None and len(str(request_id)) > MAX_NAME:
        raise MalformedBody(f"'id' is {len(str(request_id))} characters; at most {MAX_NAME}")
    return InferRequest(
        model_name=model_name,
        infer_inputs=inputs,
        request_id=str(request_id) if request_id not in (None, "") else None,
        parameters=params,
        request_outputs=outputs,
    )


def _rest_input(item: Any, index: int, binary: bytes, offset: int) -> tuple[InferInput, int]:
    if not isinstance(item, dict):
        raise MalformedBody(f"inputs[{index}] must be an object, got {brief(item)}")
    name = item.get("name")
    if not isinstance(name, str) or not name:
        raise MalformedBody(f"inputs[{index}] needs a 'name' string, got {brief(name)}")
    datatype, shape = item.get("datatype"), item.get("shape")
    check_header(name, datatype, shape)
    params = item.get("parameters") or {}
    if not isinstance(params, dict):
        raise MalformedBody(f"input '{name}': 'parameters' must be an object")
    tensor = InferInput(name=name, shape=list(shape or ()), datatype=datatype, parameters=params)
    size = params.get("binary_data_size")
    if size is not None:
        if not isinstance(size, int) or size < 0 or offset + size > len(binary):
            raise MalformedBody(
                f"input '{name}': binary_data_size {size!r} does not fit the "
                f"{len(binary) - offset} binary bytes left in the body"
            )
        tensor._raw_data = binary[offset : offset + size]
        return tensor, offset + size
    if "data" not in item:
        raise MalformedBody(f"input '{name}' has neither 'data' nor binary_data_size")
    tensor._data = item["data"]
    return tensor, offset


def _reject_booleans(tensor: InferInput) -> None:
    """A numeric tensor's JSON data must not hold true / false: numpy would read
    ``[true, 1.5]`` as ``[1.0, 1.5]``. Only bodies with a boolean literal pay this scan."""
    data = tensor._data
    if tensor.datatype in ("BOOL", "BYTES") or not isinstance(data, list):
        return
    try:
        flat = _flatten(data)
    except InvalidTensor:
        return  # uneven nesting: to_numpy reports it with the input's name
    if any(value is True or value is False for value in flat):
        raise _not_numbers(tensor.name, tensor.datatype, data)


def _requested_outputs(raw: Any) -> list[RequestedOutput] | None:
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise MalformedBody(f"'outputs' must be a list of {{name}} objects, got {brief(raw)}")
    outputs = []
    for index, item in enumerate(raw):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise MalformedBody(f"outputs[{index}] must be an object with a 'name' string")
        if len(item["name"]) > MAX_NAME:
            raise MalformedBody(f"outputs[{index}] name is longer than {MAX_NAME} characters")
        params = item.get("parameters")
        outputs.append(RequestedOutput(item["name"], params if isinstance(params, dict) else {}))
    return outputs or None


def check_header(name: str, datatype: Any, shape: Any) -> None:
    if len(name) > MAX_NAME:
        raise InvalidTensor(
            f"input name {brief(name)} is {len(name)} characters; at most {MAX_NAME}"
        )
    if not isinstance(datatype, str) or datatype not in DTYPES:
        raise InvalidTensor(
            f"input '{name}': datatype {brief(datatype)} is not a V2 datatype; expected one "
            f"of {', '.join(DTYPES)}"
        )
    if not isinstance(shape, list | tuple) or not shape or not _dimensions(shape):
        raise InvalidTensor(
            f"input '{name}': shape must be a list of non-negative integers, got {brief(shape)}"
        )


def _dimensions(shape: list[Any] | tuple[Any, ...]) -> bool:
    """Whether every dimension is a non-negative int (not a bool)."""
    for d in shape:
        if type(d) is not int and (not isinstance(d, int) or isinstance(d, bool)):
            return False
        if d < 0:
            return False
    return True


def to_numpy(tensor: InferInput) -> np.ndarray:
    """The tensor's data as an array of its shape; every mismatch is a 400."""
    name, datatype, shape = tensor.name, tensor.datatype, list(tensor.shape)
    check_header(name, datatype, shape)
    count = math.prod(shape)
    raw = tensor._raw_data
    if raw is not None:
        if datatype == "BYTES":
            array = _unpack_bytes(name, bytes(raw))
        else:
            dtype = DTYPES[datatype]
            if len(raw) != count * dtype.itemsize:
                raise InvalidTensor(
                    f"input '{name}': shape {shape} of {datatype} needs "
                    f"{count * dtype.itemsize} bytes of binary data, got {len(raw)}"
                )
            array = np.frombuffer(raw, dtype=dtype)
    else:
        array = _from_values(name, datatype, tensor.data)
    if array.size != count:
        raise InvalidTensor(
            f"input '{name}': shape {shape} holds {count} values but the data has {array.size}"
        )
    return array.reshape(shape)


def _from_values(name: str, datatype: str, data: Any) -> np.ndarray:
    if data is None:
        raise InvalidTensor(f"input '{name}' has no data")
    if isinstance(data, np.ndarray):  # parsed by arrayjson: flat float64 or int64
        return _checked(name, datatype, data, data)
    if not isinstance(data, list):
        if isinstance(data, str | bytes | dict | int | float):  # a JSON scalar or object
            raise InvalidTensor(f"input '{name}': 'data' must be a list, got {brief(data)}")
        data = list(data)  # gRPC repeated fields
    if datatype == "BYTES":
        flat = _flatten(data)
        for value in flat:
            if not isinstance(value, str | bytes):
                raise InvalidTensor(
                    f"input '{name}' is BYTES, so its data must be strings; found {brief(value)}"
                )
        array = np.empty(len(flat), dtype=object)
        array[:] = flat
        return array
    try:
        raw = np.asarray(data)  # numpy infers the kind in C; Python loops only on errors
    except (ValueError, TypeError, OverflowError) as err:
        raise _not_numbers(name, datatype, data, err) from err
    return _checked(name, datatype, data, raw)


def _checked(name: str, datatype: str, data: Any, raw: np.ndarray) -> np.ndarray:
    """``raw`` (numpy's reading of ``data``) as ``datatype``, flat, or a 400 naming why."""
    target = DTYPES[datatype]
    kind = raw.dtype.kind
    if datatype == "BOOL":
        if kind != "b":
            raise _not_numbers(name, datatype, data)
    elif kind == "b" or kind not in "iuf":
        if kind == "b" or any(not _is_number(v, datatype) for v in _flatten(data)):
            raise _not_numbers(name, datatype, data)
        try:  # ints too large for int64, or None (NaN for floats)
            raw = np.asarray(data, dtype=target)
        except (ValueError, TypeError, OverflowError) as err:
            raise _not_numbers(name, datatype, data, err) from err
    elif target.kind in "iu":
        if kind == "f" and not np.array_equal(raw, np.trunc(raw)):
            fraction = raw[raw != np.trunc(raw)].reshape(-1)[0]
            raise InvalidTensor(
                f"input '{name}' has datatype {datatype}, so its data must be whole numbers; "
                f"found {fraction}"
            )
        info = np.iinfo(target)
        if raw.size and (raw.min() < info.min or raw.max() > info.max):
            raise InvalidTensor(
                f"input '{name}': a value does not fit datatype {datatype} "
                f"(range {info.min}..{info.max})"
            )
    return raw.astype(target, copy=False).reshape(-1)


def _not_numbers(name: str, datatype: str, data: Any, err: Exception | None = None) -> Exception:
    try:
        bad = next((v for v in _flatten(data) if not _is_number(v, datatype)), None)
    except InvalidTensor as uneven:
        return uneven
    if datatype == "BOOL" and bad is not None:
        return InvalidTensor(
            f"input '{name}' has datatype BOOL, so its data must be booleans; found {brief(bad)}"
        )
    if isinstance(err, OverflowError) or (isinstance(bad, int) and not isinstance(bad, bool)):
        return InvalidTensor(f"input '{name}': a value does not fit datatype {datatype} ({err})")
    found = f"found {brief(bad)}" if bad is not None else f"({err})"
    return InvalidTensor(
        f"input '{name}' has datatype {datatype}, so its data must be numbers in nested lists "
        f"of equal length; {found}"
    )


def _is_number(value: Any, datatype: str) -> bool:
    if datatype == "BOOL":
        return isinstance(value, bool)
    return value is None or (isinstance(value, int | float) and not isinstance(value, bool))


def _flatten(data: list[Any]) -> list[Any]:
    if not data or not isinstance(data[0], list):
        if any(isinstance(v, list) for v in data):
            raise InvalidTensor("tensor data nests lists unevenly")
        return data
    flat: list[Any] = []
    for item in data:
        if not isinstance(item, list):
            raise InvalidTensor("tensor data nests lists unevenly")
        flat.extend(_flatten(item))
    return flat


def _unpack_bytes(name: str, raw: bytes) -> np.ndarray:
    values, offset = [], 0
    while offset < len(raw):
        if offset + 4 > len(raw):
            raise InvalidTensor(f"input '{name}': BYTES binary data ends inside a length prefix")
        (length,) = struct.unpack_from("<I", raw, offset)
        offset += 4
        if offset + length > len(raw):
            raise InvalidTensor(f"input '{name}': a BYTES element runs past the binary data")
        values.append(raw[offset : offset + length])
        offset += length
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array


def pack_bytes(array: np.ndarray) -> bytes:
    """BYTES elements as 4-byte little-endian length + bytes, row-major."""
    parts = []
    for value in array.reshape(-1).tolist():
        data = value if isinstance(value, bytes) else str(value).encode("utf-8")
        parts.append(struct.pack("<I", len(data)))
        parts.append(data)
    return b"".join(parts)
