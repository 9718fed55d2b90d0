"""Requests -> the estimator's input ``X``, checked against the model's schema.

V2: one 2-D tensor ``[N, F]``, or one ``[N]`` / ``[N, 1]`` tensor per feature named after
``feature_names_in_`` (assembled into a DataFrame in the model's column order).
V1: ``instances`` / ``inputs`` as a list of rows or a list of objects keyed by feature.
Every message names the input, what was expected and what came.
"""

from __future__ import annotations

from typing import Any, TypeAlias

import numpy as np
import pandas as pd
from kserve.protocol.infer_type import InferInput

from predictor.errors import FeatureMismatch, InvalidTensor, MalformedBody
from predictor.schema import NUMERIC, STRING, ModelSchema
from predictor.tensors import NUMERIC_DATATYPES, brief, to_numpy

X: TypeAlias = np.ndarray | pd.DataFrame
_ALL = np.logical_and.reduce  # ndarray.all() without its Python-level wrapper


def _names(items: list[str], limit: int = 20) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f", ... ({len(items)} in all)" if len(items) > limit else "")


def v2_to_x(inputs: list[InferInput], schema: ModelSchema) -> X:
    """The estimator's input from V2 tensors."""
    if not inputs:
        raise MalformedBody("request has no inputs; send one 2-D tensor or one per feature")
    names = schema.feature_names
    if len(inputs) == 1 and not names:  # the common request: one matrix
        return _from_matrix(inputs[0], schema)
    given = [t.name for t in inputs]
    if len(given) != len(set(given)):
        dupes = sorted({n for n in given if given.count(n) > 1})
        raise FeatureMismatch(f"inputs named more than once: {_names(dupes)}")
    if names and (len(inputs) > 1 or given[0] in names):
        return _from_columns(inputs, schema)
    if len(inputs) > 1:
        raise FeatureMismatch(
            f"got {len(inputs)} inputs ({_names(given)}) but the model has no feature names; "
            f"send one 2-D tensor [N, {schema.n_features or 'F'}]"
        )
    return _from_matrix(inputs[0], schema)


def _from_matrix(tensor: InferInput, schema: ModelSchema) -> X:
    expected = schema.tensor_datatype
    width = schema.n_features if schema.n_features is not None else "F"
    if expected is None:
        kinds = ", ".join(f"{f.name} ({f.datatype})" for f in schema.features or ())
        raise FeatureMismatch(
            f"input '{tensor.name}': this model mixes numeric and string features "
            f"({kinds}); send one [N] tensor per feature, named after it"
        )
    shape = list(tensor.shape)
    if len(shape) != 2:
        raise InvalidTensor(
            f"input '{tensor.name}': expected a 2-D tensor [N, {width}], got shape {shape}"
            + (f"; for one row send shape [1, {shape[0]}]" if len(shape) == 1 else "")
        )
    if schema.n_features is not None and shape[1] != schema.n_features:
        raise InvalidTensor(
            f"input '{tensor.name}': expected {schema.n_features} features per row "
            f"(shape [N, {schema.n_features}]), got shape {shape}"
        )
    if shape[0] == 0:
        raise InvalidTensor(f"input '{tensor.name}' has 0 rows (shape {shape}); send at least one")
    _check_kind(tensor, NUMERIC if expected != "BYTES" else STRING, tensor.name)
    array = to_numpy(tensor)
    if expected == "BYTES":
        array = _decode_strings(array, tensor.name)
    else:
        _check_finite(array, tensor.name, nan_ok=schema.allow_nan)
    if schema.feature_names:
        return pd.DataFrame(array, columns=schema.feature_names, copy=False)
    return array


def _from_columns(inputs: list[InferInput], schema: ModelSchema) -> X:
    features = schema.features or ()
    by_name = {t.name: t for t in inputs}
    wanted = [f.name for f in features]
    unknown = [n for n in by_name if n not in set(wanted)]
    missing = [n for n in wanted if n not in by_name]
    if unknown or missing:
        parts = []
        if missing:
            parts.append(f"missing features: {_names(missing)}")
        if unknown:
            parts.append(f"unknown inputs: {_names(unknown)}")
        raise FeatureMismatch(
            "; ".join(parts) + f". The model expects one [N] tensor per feature: {_names(wanted)}"
        )
    columns: dict[str, Any] = {}
    rows = None
    for feature in features:
        tensor = by_name[feature.name]
        shape = list(tensor.shape)
        if not (len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)):
            raise InvalidTensor(
                f"input '{feature.name}': a feature tensor must have shape [N] or [N, 1], "
                f"got {shape}"
            )
        if shape[0] == 0:
            raise InvalidTensor(
                f"input '{feature.name}' has 0 rows (shape {shape}); send at least one"
            )
        if rows is None:
            rows = shape[0]
        elif shape[0] != rows:
            raise InvalidTensor(
                f"input '{feature.name}' has {shape[0]} rows but "
                f"'{features[0].name}' has {rows}; every feature needs the same row count"
            )
        _check_kind(tensor, feature.kind, feature.name, feature.datatype)
        values = to_numpy(tensor).reshape(-1)
        if feature.kind == STRING:
            values = _decode_strings(values, feature.name)
        else:
            _check_finite(values, feature.name, nan_ok=schema.allow_nan)
        columns[feature.name] = values
    return pd.DataFrame(columns, copy=False)


def _check_kind(tensor: InferInput, kind: str, name: str, datatype: str | None = None) -> None:
    numeric = tensor.datatype in NUMERIC_DATATYPES
    if kind == NUMERIC and not numeric:
        raise InvalidTensor(
            f"input '{name}': the model expects numbers here (a numeric datatype such as "
            f"{datatype or 'FP64'}), got {tensor.datatype}"
        )
    if kind == STRING and numeric:
        raise InvalidTensor(
            f"input '{name}': the model was trained on strings here (datatype BYTES), "
            f"got {tensor.datatype}"
        )


def _decode_strings(array: np.ndarray, name: str) -> np.ndarray:
    out = np.empty(array.shape, dtype=object)
    flat_in, flat_out = array.reshape(-1), out.reshape(-1)
    for i, value in enumerate(flat_in):
        if isinstance(value, bytes):
            try:
                value = value.decode("utf-8")
            except UnicodeDecodeError as err:
                raise InvalidTensor(f"input '{name}': element {i} is not UTF-8 text") from err
        flat_out[i] = value
    return out


def _check_finite(array: np.ndarray, name: str, nan_ok: bool = False) -> None:
    """Reject NaN / infinity for estimators that cannot take them. Those that can (their
    ``allow_nan`` tag, e.g. HistGradientBoosting) get the values as sent."""
    if nan_ok or array.dtype.kind != "f":
        return
    finite = np.isfinite(array)
    if _ALL(finite, axis=None):
        return
    where = np.argwhere(~finite)[0].tolist()
    value = array[tuple(where)] if array.ndim else array
    raise InvalidTensor(
        f"input '{name}': this model cannot take NaN or infinity; found {value} at index "
        f"{where} (a value too large for its datatype also becomes infinity)"
    )


def v1_to_x(body: Any, schema: ModelSchema) -> X:
    """The estimator's input from a V1 body (``instances`` or ``inputs``)."""
    if not isinstance(body, dict):
        raise MalformedBody(f"V1 body must be a JSON object, got {type(body).__name__}")
    key = "instances" if "instances" in body else "inputs" if "inputs" in body else None
    if key is None:
        raise MalformedBody("V1 body needs 'instances' (or 'inputs'): a list of rows")
    rows = body[key]
    if not isinstance(rows, list) or not rows:
        raise MalformedBody(f"'{key}' must be a non-empty list of rows, got {brief(rows)}")
    if all(isinstance(r, dict) for r in rows):
        return _v1_records(rows, schema, key)
    if not all(isinstance(r, list) for r in rows):
        raise MalformedBody(
            f"'{key}' must hold rows that are all lists (values in feature order) or all "
            f"objects keyed by feature name; got {type(rows[0]).__name__} items"
        )
    width = schema.n_features
    for i, row in enumerate(rows):
        if width is not None and len(row) != width:
            raise InvalidTensor(f"{key}[{i}] has {len(row)} values; the model expects {width}")
    if schema.features:
        frame = pd.DataFrame(rows, columns=schema.feature_names)
        return _checked_frame(frame, schema, key)
    for i, row in enumerate(rows):
        bad = [v for v in row if isinstance(v, bool) or not isinstance(v, int | float | None)]
        if bad:
            raise InvalidTensor(
                f"'{key}' must hold numbers of equal-length rows; {key}[{i}] has {brief(bad[0])}"
            )
    try:
        array = np.asarray(rows, dtype=np.float64)
    except (ValueError, TypeError) as err:
        raise InvalidTensor(f"'{key}' must hold numbers of equal-length rows ({err})") from err
    _check_finite(array, key, nan_ok=schema.allow_nan)
    return array


def _v1_records(rows: list[dict[str, Any]], schema: ModelSchema, key: str) -> pd.DataFrame:
    names = schema.feature_names
    if not names:
        raise FeatureMismatch(
            f"'{key}' holds objects but the model has no feature names; send lists of values"
        )
    seen = set().union(*rows)
    missing = [n for n in names if n not in seen or any(n not in r for r in rows)]
    unknown = sorted(str(k) for k in seen if k not in set(names))
    if missing or unknown:
        parts = [f"missing features: {_names(missing)}"] if missing else []
        parts += [f"unknown keys: {_names(unknown)}"] if unknown else []
        raise FeatureMismatch("; ".join(parts) + f". Expected keys: {_names(names)}")
    return _checked_frame(pd.DataFrame.from_records(rows, columns=names), schema, key)


def _checked_frame(frame: pd.DataFrame, schema: ModelSchema, key: str) -> pd.DataFrame:
    for feature in schema.features or ():
        column = frame[feature.name]
        if feature.kind == STRING:
            bad = [v for v in column if not isinstance(v, str)]
            if bad:
                raise InvalidTensor(
                    f"{key}: feature '{feature.name}' takes strings, got {brief(bad[0])}"
                )
            continue
        bad = [v for v in column if isinstance(v, bool) or not isinstance(v, int | float)]
        bad = [v for v in bad if v is not None]
        if bad:
            raise InvalidTensor(
                f"{key}: feature '{feature.name}' takes numbers, got {brief(bad[0])}"
            )
        values = pd.to_numeric(column).to_numpy()
        _check_finite(values.astype(np.float64), feature.name, nan_ok=schema.allow_nan)
        frame[feature.name] = values
    return frame
