"""Method results -> V2 outputs, and V2 responses -> REST bytes / gRPC messages / V1 JSON.

Outputs are named after the method that made them. Labels keep the classes' type
(INT64, FP64, or BYTES for strings); scores are FP64 ``[N, n_classes]`` with the class
labels in the output's ``parameters.classes`` (a JSON list over REST; a JSON-encoded
string over gRPC, whose parameters hold scalars only). gRPC tensor data always travels in
``raw_output_contents``.
"""

from __future__ import annotations

import itertools
import os
from typing import Any

import numpy as np
import orjson
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse

from predictor.schema import ModelSchema, v2_datatype
from predictor.tensors import pack_bytes

SCORE_METHODS = frozenset({"predict_proba", "predict_log_proba", "decision_function"})
CLASSES_PARAM = "classes"
# dtype kinds orjson writes straight from the array (bool, int, uint, float): the same
# text as for ``tolist()``'s Python scalars, without a Python object per value
_NUMPY_JSON_KINDS = frozenset("biuf")


class _ResponseIds:
    """Unique response ids without a syscall per request: a random 64-bit prefix per
    process (drawn again in a forked child) + a counter; 32 hex digits like a uuid4."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._prefix = os.urandom(8).hex()
        self._counter = itertools.count(1)

    def next(self) -> str:
        return f"{self._prefix}{next(self._counter):016x}"


_IDS = _ResponseIds()
os.register_at_fork(after_in_child=_IDS.reset)


def new_response_id() -> str:
    """A fresh response id (for requests that sent none)."""
    return _IDS.next()


def normalise(array: Any) -> np.ndarray:
    """The array with V2-friendly dtypes: strings as objects, ints INT64, floats FP64."""
    array = np.asarray(array)
    kind = array.dtype.kind
    if kind in ("U", "S"):
        return array.astype(object)
    if kind == "i" and array.dtype != np.int64:
        return array.astype(np.int64)
    if kind == "u" and array.dtype != np.uint64:
        return array.astype(np.int64)
    if kind == "f" and array.dtype != np.float64:
        return array.astype(np.float64)
    return array


def build_response(
    results: dict[str, Any],
    order: list[str],
    schema: ModelSchema,
    request: InferRequest,
    model_name: str,
    model_version: str | None,
) -> InferResponse:
    """A KServe ``InferResponse`` holding numpy outputs in the requested order."""
    outputs = []
    for method in order:
        array = normalise(results[method])
        output = InferOutput(
            name=method,
            shape=list(array.shape),
            datatype=v2_datatype(array.dtype),
            parameters=output_parameters(method, array, schema),
        )
        output._data = array
        outputs.append(output)
    return InferResponse(
        response_id=request.id or _IDS.next(),
        model_name=model_name,
        model_version=model_version,
        infer_outputs=outputs,
        from_grpc=request.from_grpc,
    )


def output_parameters(method: str, array: np.ndarray, schema: ModelSchema) -> dict | None:
    """An output's parameters: a score matrix names its columns' classes."""
    if method in SCORE_METHODS and schema.classes is not None and array.ndim == 2:
        return {CLASSES_PARAM: list(schema.classes)}
    return None


def _binary_wanted(request: InferRequest | None, name: str) -> bool:
    if request is None:
        return False
    for wanted in request.request_outputs or ():
        if wanted.name == name and wanted.parameters and "binary_data" in wanted.parameters:
            return wanted.parameters["binary_data"] is True
    params = request.parameters or {}
    return params.get("binary_data_output") is True


def json_values(array: np.ndarray) -> Any:
    """``array`` in a form ``orjson.dumps(..., option=OPT_SERIALIZE_NUMPY)`` writes as a
    JSON list: numeric and boolean arrays as themselves (C-contiguous; orjson needs
    that), anything else as nested Python lists, bytes decoded as UTF-8."""
    if array.dtype.kind in _NUMPY_JSON_KINDS and array.ndim >= 1:
        return np.ascontiguousarray(array)
    if array.dtype == object and array.ndim >= 1:
        if array.ndim > 1:
            return [json_values(row) for row in array]
        return [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in array]
    return array.tolist()


def _json_data(array: np.ndarray) -> Any:
    return json_values(array.reshape(-1))


def to_rest_v2(response: InferResponse, request: InferRequest | None) -> tuple[bytes, int | None]:
    """JSON body (and the JSON length when binary outputs follow it)."""
    outputs, blobs = [], []
    for output in response.outputs:
        array: np.ndarray = output._data
        item: dict[str, Any] = {
            "name": output.name,
            "datatype": output.datatype,
            "shape": list(array.shape),
        }
        params = dict(output.parameters or {})
        if _binary_wanted(request, output.name):
            blob = pack_bytes(array) if array.dtype == object else array.tobytes()
            params["binary_data_size"] = len(blob)
            blobs.append(blob)
        else:
            item["data"] = _json_data(array)
        if params:
            item["parameters"] = params
        outputs.append(item)
    doc: dict[str, Any] = {"model_name": response.model_name, "id": response.id}
    if response.model_version:
        doc["model_version"] = response.model_version
    doc["outputs"] = outputs
    head = orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY)
    if not blobs:
        return head, None
    return head + b"".join(blobs), len(head)


def to_grpc(response: InferResponse) -> pb.ModelInferResponse:
    """A ``ModelInferResponse`` with every tensor in ``raw_output_contents``."""
    message = pb.ModelInferResponse(
        model_name=response.model_name,
        model_version=response.model_version or "",
        id=response.id or "",
    )
    for output in response.outputs:
        add_grpc_output(message, output.name, output.datatype, output._data, output.parameters)
    return message


def add_grpc_output(
    message: pb.ModelInferResponse,
    name: str,
    datatype: str,
    array: np.ndarray,
    parameters: dict[str, Any] | None,
) -> None:
    """Append one output tensor to ``message``, its data in ``raw_output_contents``."""
    tensor = message.outputs.add(name=name, datatype=datatype)
    tensor.shape.extend(array.shape)
    for key, value in (parameters or {}).items():
        if isinstance(value, list | dict):
            tensor.parameters[key].string_param = orjson.dumps(value).decode()
        elif isinstance(value, bool):
            tensor.parameters[key].bool_param = value
        elif isinstance(value, int):
            tensor.parameters[key].int64_param = value
        else:
            tensor.parameters[key].string_param = str(value)
    blob = pack_bytes(array) if array.dtype == object else np.ascontiguousarray(array).tobytes()
    message.raw_output_contents.append(blob)


def to_v1(result: Any) -> bytes:
    """``{"predictions": [...]}`` with labels, values or score rows."""
    data = json_values(normalise(result))
    return orjson.dumps({"predictions": data}, option=orjson.OPT_SERIALIZE_NUMPY)
