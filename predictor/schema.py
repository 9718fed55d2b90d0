"""What an estimator expects and offers, computed once at load time.

The schema drives request validation (``predictor.codec``) and the V2 model metadata.
scikit-learn does not record the dtypes it was trained on; what it does record is used:
``feature_names_in_``, ``n_features_in_``, ``classes_`` and the ``categories_`` of
encoders inside a ``ColumnTransformer`` / ``Pipeline`` (their dtype is the column's
training dtype). Other columns are numeric and reported as FP64 (any numeric datatype is
accepted for them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

METHODS = ("predict", "predict_proba", "predict_log_proba", "decision_function", "transform")
TENSOR_INPUT = "input-0"
NUMERIC, STRING = "numeric", "string"


@dataclass(frozen=True)
class Feature:
    """One input column: its name, whether it holds numbers or strings, its V2 datatype."""

    name: str
    kind: str
    datatype: str


@dataclass(frozen=True)
class ModelSchema:
    """The contract of one loaded estimator."""

    n_features: int | None
    features: tuple[Feature, ...] | None
    methods: tuple[str, ...]
    classes: tuple[Any, ...] | None
    label_datatype: str
    allow_nan: bool
    estimator_type: str
    n_outputs: int = 1
    extra: dict[str, Any] = field(default_factory=dict)
    # method -> (datatype, shape) seen when the method ran on probe rows at load
    observed: dict[str, tuple[str, list[int]]] = field(default_factory=dict)

    @property
    def n_features_or_one(self) -> int:
        return self.n_features or 1

    @property
    def feature_names(self) -> list[str] | None:
        return [f.name for f in self.features] if self.features else None

    @property
    def tensor_datatype(self) -> str | None:
        """Datatype of the single 2-D input, or None when columns mix numbers and strings."""
        if not self.features:
            return "FP64"
        kinds = {f.kind for f in self.features}
        if kinds == {NUMERIC}:
            return "FP64"
        if kinds == {STRING}:
            return "BYTES"
        return None

    def output_shape(self, method: str) -> list[int]:
        if method in self.observed:
            return list(self.observed[method][1])
        width = -1
        if method in ("predict_proba", "predict_log_proba") and self.classes is not None:
            width = len(self.classes)
        elif method == "decision_function" and self.classes is not None:
            width = len(self.classes) if len(self.classes) > 2 else 0
        elif method == "predict":
            width = self.n_outputs if self.n_outputs > 1 else 0
        return [-1] if width == 0 else [-1, width]

    def output_datatype(self, method: str) -> str:
        if method in self.observed:
            return self.observed[method][0]
        return self.label_datatype if method == "predict" else "FP64"


def v2_datatype(dtype: np.dtype[Any]) -> str:
    """The V2 datatype name for a numpy dtype (strings and objects are BYTES)."""
    if dtype.kind in ("U", "S", "O"):
        return "BYTES"
    if dtype.kind == "b":
        return "BOOL"
    if dtype.kind in ("i", "u"):
        return f"{'U' if dtype.kind == 'u' else ''}INT{dtype.itemsize * 8}"
    if dtype.kind == "f":
        return f"FP{dtype.itemsize * 8}"
    return "BYTES"


def describe(estimator: Any, sample: Any = None) -> ModelSchema:
    """Inspect a fitted estimator (or Pipeline) and return its schema.

    Args:
        estimator: The fitted estimator.
        sample: Optional DataFrame of example rows (``sample.csv`` next to the artifact);
            its column dtypes, when given, are the training dtypes reported in metadata.
    """
    names = getattr(estimator, "feature_names_in_", None)
    n_features = getattr(estimator, "n_features_in_", None)
    features = None
    if names is not None:
        kinds = _column_kinds(estimator)
        for column in getattr(sample, "columns", []):
            datatype = v2_datatype(sample[column].dtype)
            datatype = "INT64" if datatype.startswith(("INT", "UINT")) else datatype
            datatype = "FP64" if datatype.startswith("FP") else datatype
            kinds[str(column)] = (STRING if datatype == "BYTES" else NUMERIC, datatype)
        features = tuple(
            Feature(str(name), *kinds.get(str(name), (NUMERIC, "FP64"))) for name in names
        )
        n_features = len(features)
    classes = getattr(estimator, "classes_", None)
    class_tuple = None
    label_datatype = "FP64"
    if isinstance(classes, np.ndarray) and classes.ndim == 1:
        class_tuple = tuple(classes.tolist())
        label_datatype = v2_datatype(classes.dtype)
        if label_datatype in ("INT8", "INT16", "INT32", "UINT8", "UINT16", "UINT32"):
            label_datatype = "INT64"
    return ModelSchema(
        n_features=int(n_features) if n_features is not None else None,
        features=features,
        methods=tuple(m for m in METHODS if _has_method(estimator, m)),
        classes=class_tuple,
        label_datatype=label_datatype,
        allow_nan=_allows_nan(estimator),
        estimator_type=_estimator_type(estimator),
        n_outputs=_n_outputs(estimator),
    )


def _n_outputs(estimator: Any) -> int:
    from sklearn.pipeline import Pipeline

    final = estimator.steps[-1][1] if isinstance(estimator, Pipeline) else estimator
    n_outputs = getattr(final, "n_outputs_", None)
    if n_outputs is None and _estimator_type(final) == "regressor":
        coef = getattr(final, "coef_", None)
        n_outputs = coef.shape[0] if isinstance(coef, np.ndarray) and coef.ndim == 2 else 1
    return int(n_outputs or 1)


def _has_method(estimator: Any, method: str) -> bool:
    try:
        return callable(getattr(estimator, method, None))
    except Exception:  # available_if raises AttributeError subclasses; be safe
        return False


def _allows_nan(estimator: Any) -> bool:
    try:
        from sklearn.utils import get_tags

        return bool(get_tags(estimator).input_tags.allow_nan)
    except Exception:
        return False


def _estimator_type(estimator: Any) -> str:
    from sklearn.base import is_classifier, is_regressor

    try:
        if is_classifier(estimator):
            return "classifier"
        if is_regressor(estimator):
            return "regressor"
    except Exception:  # sklearn >= 1.6 raises for objects without __sklearn_tags__
        pass
    return "transformer" if hasattr(estimator, "transform") else "estimator"


def _column_kinds(estimator: Any) -> dict[str, tuple[str, str]]:
    """Column name -> (kind, datatype) learned from fitted encoders' ``categories_``."""
    kinds: dict[str, tuple[str, str]] = {}
    for transformer, columns in _encoders(estimator):
        categories = getattr(transformer, "categories_", None)
        if categories is None:
            continue
        for column, cats in zip(columns, categories, strict=False):
            datatype = v2_datatype(np.asarray(cats).dtype)
            kinds[str(column)] = (STRING if datatype == "BYTES" else NUMERIC, datatype)
    return kinds


def _encoders(estimator: Any) -> list[tuple[Any, list[Any]]]:
    """(fitted encoder, the input columns it sees) pairs at the front of a model."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    names = [str(n) for n in getattr(estimator, "feature_names_in_", [])]
    if isinstance(estimator, Pipeline):
        first = estimator.steps[0][1]
        return _encoders(first) if first not in (None, "passthrough") else []
    if isinstance(estimator, ColumnTransformer):
        found = []
        for _, transformer, columns in getattr(estimator, "transformers_", []):
            if transformer in ("drop", "passthrough"):
                continue
            resolved = _resolve_columns(columns, names)
            inner = transformer
            if isinstance(transformer, Pipeline):  # e.g. SimpleImputer -> OneHotEncoder
                steps = [step for _, step in transformer.steps]
                inner = next((s for s in steps if hasattr(s, "categories_")), steps[0])
            if hasattr(inner, "categories_"):
                found.append((inner, resolved))
        return found
    if hasattr(estimator, "categories_"):
        return [(estimator, names)]
    return []


def _resolve_columns(columns: Any, names: list[str]) -> list[Any]:
    if isinstance(columns, slice):
        if isinstance(columns.start, str) or isinstance(columns.stop, str):  # labels: inclusive
            start = 0 if columns.start is None else names.index(columns.start)
            stop = len(names) if columns.stop is None else names.index(columns.stop) + 1
            return names[start : stop : columns.step]
        return names[columns]
    if isinstance(columns, str | int):
        columns = [columns]
    resolved = []
    for column in np.asarray(columns).tolist():
        if isinstance(column, bool):
            continue
        if isinstance(column, int) and 0 <= column < len(names):
            resolved.append(names[column])
        else:
            resolved.append(column)
    if np.asarray(columns).dtype == bool:  # boolean mask
        resolved = [n for n, keep in zip(names, columns, strict=False) if keep]
    return resolved
