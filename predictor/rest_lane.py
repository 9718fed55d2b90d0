"""The REST lane: a plain V2 JSON request goes from bytes to numpy and back.

The REST twin of :mod:`predictor.grpc_lane`. The general path turns every V2 body into
KServe's ``InferRequest`` (``InferInput`` objects), runs ``SklearnModel.preprocess``,
``predict`` and ``postprocess`` (``InferOutput`` / ``InferResponse``) and encodes the
answer. For the common request — one FP64 or FP32 tensor ``[N, F]`` with its data as a
flat JSON list, for a model with unnamed numeric features, asking for plain outputs or
the default one, no parameters, no binary data — :func:`answer` reads the data straight
into an array, runs the same ``predict`` (batching included), times the three stages
into the same histograms and writes the same JSON. One RF row in-process: the four
general steps ~11.7 µs, the lane's ~4 µs (2-core AMD VM).

The lane never answers with an error of its own: a body it does not take in full —
anything else or anything wrong (invalid JSON, booleans or strings among the numbers,
nesting, a size that does not add up, NaN for a model that cannot take it, an unknown
output, an id that is not a string) — returns ``None``, and the general path answers it
with its checks and messages. Models with overridden stages never take it
(:func:`predictor.grpc_lane.takes`).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import orjson

from predictor import arrayjson, responses
from predictor.grpc_lane import plain_schema, takes, timed_predict
from predictor.model import OFFLOAD_VALUES
from predictor.schema import v2_datatype
from predictor.tensors import DTYPES, MAX_NAME

FLOATS = frozenset({"FP64", "FP32"})
TOP_KEYS = frozenset({"inputs", "outputs", "id", "parameters"})
INPUT_KEYS = frozenset({"name", "shape", "datatype", "data", "parameters"})
_ALL = np.logical_and.reduce


async def answer(model: Any, body: bytes) -> bytes | None:
    """The JSON reply to a V2 ``body``, or ``None`` when the general path must answer.

    Args:
        model: The ready model the request names.
        body: The request body (JSON only: no binary tensor data follows it).

    Returns:
        The bytes ``to_rest_v2`` would give for the general path's response, or ``None``.

    Raises:
        PredictorError: from ``predict`` (the estimator refused the rows, or failed).
    """
    if not takes(model):
        return None
    parsed = _parse(body)  # the general path parses before preprocess too: not timed
    clock = time.perf_counter
    start = clock()
    taken = _read(model, parsed, body)
    if taken is None:
        return None
    x, methods, request_id = taken
    results, post, end = await timed_predict(model, x, methods, start)
    schema = model.schema
    outputs = []
    for method in methods:
        array = responses.normalise(results[method])
        item: dict[str, Any] = {
            "name": method,
            "datatype": v2_datatype(array.dtype),
            "shape": list(array.shape),
            "data": responses.json_values(array.reshape(-1)),
        }
        params = responses.output_parameters(method, array, schema)
        if params:
            item["parameters"] = params
        outputs.append(item)
    doc: dict[str, Any] = {
        "model_name": model.name,
        "id": request_id or responses.new_response_id(),
    }
    if model.version:
        doc["model_version"] = model.version
    doc["outputs"] = outputs
    reply = orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY)
    post.observe(clock() - end)
    return reply


def _parse(body: bytes) -> Any:
    doc = arrayjson.parse_v2(body)  # large bodies: numeric data straight to numpy
    if doc is not None:
        return doc
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


def _read(model: Any, doc: Any, body: bytes) -> tuple[np.ndarray, list[str], str | None] | None:
    """``(X, methods, request id)`` for a parsed body the lane takes in full, else ``None``."""
    schema = model.schema
    if not plain_schema(schema) or not isinstance(doc, dict) or not TOP_KEYS.issuperset(doc):
        return None
    if doc.get("parameters") not in (None, {}):  # binary_data_output, or not an object
        return None
    inputs = doc.get("inputs")
    if not isinstance(inputs, list) or len(inputs) != 1:
        return None
    tensor = inputs[0]
    if not isinstance(tensor, dict) or not INPUT_KEYS.issuperset(tensor):
        return None
    name, datatype, shape = tensor.get("name"), tensor.get("datatype"), tensor.get("shape")
    if (
        tensor.get("parameters")
        or not isinstance(name, str)
        or not 0 < len(name) <= MAX_NAME
        or not isinstance(datatype, str)
        or datatype not in FLOATS
        or not isinstance(shape, list)
        or len(shape) != 2
        or type(shape[0]) is not int
        or shape[1] != schema.n_features
        or type(shape[1]) is not int
    ):
        return None
    count = shape[0] * shape[1]
    if not 0 < count <= OFFLOAD_VALUES:
        return None
    x = _numbers(tensor.get("data"), count, body)
    if x is None:
        return None
    x = x.astype(DTYPES[datatype], copy=False)
    if not schema.allow_nan and not _ALL(np.isfinite(x), axis=None):
        return None
    methods = _methods(model, doc.get("outputs"))
    request_id = _request_id(doc.get("id"))
    if methods is None or isinstance(request_id, bool):
        return None
    return x.reshape(shape[0], shape[1]), methods, request_id


def _numbers(data: Any, count: int, body: bytes) -> np.ndarray | None:
    """A flat list of ``count`` JSON numbers as an array (float64 or int64), else None."""
    if isinstance(data, np.ndarray):  # read by arrayjson: flat float64 / int64 already
        return data if data.size == count else None
    if not isinstance(data, list) or len(data) != count:
        return None
    # numpy reads true / false as 1 / 0: a body with a boolean literal is the general
    # path's (it names the offending value); strings, None and nesting fail the kind check
    if b"true" in body or b"false" in body:
        return None
    try:
        raw = np.asarray(data)
    except (ValueError, TypeError, OverflowError):
        return None
    return raw if raw.ndim == 1 and raw.dtype.kind in "if" else None


def _methods(model: Any, outputs: Any) -> list[str] | None:
    """The requested outputs (the default one when none), if all are plain and offered."""
    if outputs is None or outputs == []:
        return [model.default_output]
    if not isinstance(outputs, list):
        return None
    offered = model.schema.methods
    methods: list[str] = []
    for output in outputs:
        if not isinstance(output, dict) or output.keys() != {"name"}:
            return None
        name = output["name"]
        if not isinstance(name, str) or name not in offered:
            return None
        if name not in methods:
            methods.append(name)
    return methods


def _request_id(value: Any) -> str | bool | None:
    """The request id to echo (None: none), or False when the general path decides."""
    if value is None or value == "":
        return None
    if isinstance(value, str) and len(value) <= MAX_NAME:
        return value
    if type(value) is int and len(str(value)) <= MAX_NAME:
        return str(value)
    return False
