"""V2 JSON bodies whose tensor data goes straight from text to numpy.

A 1000-row request carries thousands of numbers; parsing them into Python floats
(orjson) and then copying those into an array (numpy) cost more than scikit-learn's
whole predict on the rows. simdjson (pysimdjson) parses the body and copies a numeric
array into a buffer without a Python object per number.

The fast path is taken only where it gives exactly what the general path would:

- the data of a numeric input is a *flat* list of numbers (as tritonclient and KServe's
  clients send it): every ``[`` in the body must belong to an array we know about, so a
  nested or ragged list is never flattened silently;
- floating-point datatypes read as float64 and integer datatypes as int64 (a float token
  in an integer tensor is left to the general path, which checks it is a whole number);
- anything else (invalid JSON, NaN literals, numbers out of range, duplicate keys, BOOL
  and BYTES tensors, nesting) returns ``None`` and the caller parses with orjson, whose
  checks and error messages then apply.
"""

from __future__ import annotations

import re
from typing import Any, Literal

import numpy as np
import simdjson

MIN_BYTES = 4096  # below this orjson is as fast, and the fast path's bookkeeping is not
FLOAT_DATATYPES = frozenset({"FP16", "FP32", "FP64"})
INT_DATATYPES = frozenset(
    {"INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64"}
)
# FP32 / FP16 data is read as float64 and narrowed later; an integer token beyond 2**53
# would round twice that way (orjson reads it as an int64 and rounds once)
NARROW_FLOATS = frozenset({"FP16", "FP32"})
EXACT_LIMIT = 2.0**53


# an integer token of 16 digits or more (2**53 has 16) in a list
_LONG_INT = re.compile(rb"[\[,]\s*-?[0-9]{16,}\s*[,\]]")


def _beyond_exact(array: np.ndarray, body: bytes) -> bool:
    """Whether an integer token beyond 2**53 may be among ``array``'s values (the scan of
    the body runs only when a value is that large)."""
    if not array.size or float(np.abs(array).max()) <= EXACT_LIMIT:
        return False
    return _LONG_INT.search(body) is not None


_BUFFER: dict[str, tuple[Literal["d", "i"], Any]] = {"f": ("d", np.float64), "i": ("i", np.int64)}


def parse_v2(body: bytes) -> dict[str, Any] | None:
    """The body as a dict with numeric ``inputs[i]["data"]`` as flat numpy arrays, or
    ``None`` when the general parser must decide (see the module docstring)."""
    if len(body) < MIN_BYTES:
        return None
    try:
        return _parse(body)
    except (ValueError, TypeError, RuntimeError, KeyError, IndexError):
        return None


def _parse(body: bytes) -> dict[str, Any] | None:
    doc = simdjson.Parser().parse(body)  # a parser per body: no state shared across threads
    if not isinstance(doc, simdjson.Object):
        return None
    keys = list(doc.keys())
    raw_inputs = doc.get("inputs")
    if len(set(keys)) != len(keys) or not isinstance(raw_inputs, simdjson.Array):
        return None
    plain: dict[str, Any] = {k: _python(doc[k]) for k in keys if k != "inputs"}
    inputs, arrays = [], 0  # arrays: the '[' we can account for
    for item in raw_inputs:
        if not isinstance(item, simdjson.Object):
            return None
        fields = list(item.keys())
        if len(set(fields)) != len(fields):
            return None
        tensor = {k: _python(item[k]) for k in fields if k != "data"}
        if "data" in fields:
            data = item["data"]
            kind = _kind(tensor.get("datatype"))
            if kind is None or not isinstance(data, simdjson.Array):
                tensor["data"] = _python(data)
            else:
                of_type, dtype = _BUFFER[kind]
                array = np.frombuffer(data.as_buffer(of_type=of_type), dtype=dtype)
                if tensor.get("datatype") in NARROW_FLOATS and _beyond_exact(array, body):
                    return None  # integers past 2**53: read via float64 they round twice
                tensor["data"] = array
                arrays += 1
        inputs.append(tensor)
    plain["inputs"] = inputs
    arrays += sum(_count_lists(v) for v in plain.values())
    if _brackets(body, arrays + 1) != arrays:  # a nested list in some data, or '[' in a string
        return None
    return plain


def _brackets(body: bytes, limit: int) -> int:
    """How many ``[`` the body has, counting no further than ``limit`` (memchr, not count:
    bytes.count scans the whole body byte by byte, find jumps between the few there are)."""
    found, at = 0, body.find(b"[")
    while at >= 0 and found < limit:
        found += 1
        at = body.find(b"[", at + 1)
    return found


def _kind(datatype: Any) -> str | None:
    if datatype in FLOAT_DATATYPES:
        return "f"
    if datatype in INT_DATATYPES:
        return "i"
    return None


def _python(value: Any) -> Any:
    if isinstance(value, simdjson.Object):
        return value.as_dict()
    if isinstance(value, simdjson.Array):
        return value.as_list()
    return value


def _count_lists(value: Any) -> int:
    if isinstance(value, list):
        return 1 + sum(_count_lists(v) for v in value if isinstance(v, list | dict))
    if isinstance(value, dict):
        return sum(_count_lists(v) for v in value.values() if isinstance(v, list | dict))
    return 0
