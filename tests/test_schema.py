"""predictor.schema: what describe() learns from fitted estimators, and V2 datatypes."""

from __future__ import annotations

from typing import Any

import models
import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer, make_column_selector
from sklearn.ensemble import RandomForestRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler
from threadpoolctl import threadpool_limits

from predictor.schema import METHODS, Feature, ModelSchema, describe, v2_datatype

FP64 = ("numeric", "FP64")


@pytest.fixture(scope="module")
def lr() -> ModelSchema:
    return describe(models.lr_pipeline())


@pytest.fixture(scope="module")
def rf() -> ModelSchema:
    return describe(models.random_forest())


@pytest.fixture(scope="module")
def ridge() -> ModelSchema:
    return describe(models.ridge())


@pytest.fixture(scope="module")
def house_model() -> Pipeline:
    return models.column_pipeline()


@pytest.fixture(scope="module")
def hgb() -> ModelSchema:
    with threadpool_limits(1):  # OpenMP on a busy machine is far slower than one thread
        return describe(models.hist_gradient_boosting())


def _xy(rows: int = 60) -> tuple[np.ndarray, np.ndarray]:
    x = np.random.default_rng(0).normal(size=(rows, 3))
    return x, np.arange(rows) % 3


def _house_with(cat_columns: Any, num_columns: Any, encoder: Any = None) -> Pipeline:
    """The house model with the ColumnTransformer's columns given another way."""
    frame, price = models.house_frame(80)
    columns = ColumnTransformer(
        [("num", StandardScaler(), num_columns), ("cat", encoder or OneHotEncoder(), cat_columns)]
    )
    return Pipeline([("columns", columns), ("model", Ridge())]).fit(frame, price)


# ------------------------------------------------------------------ describe()


def test_lr_pipeline_with_string_classes(lr: ModelSchema) -> None:
    """Feature names from the DataFrame, string classes as BYTES labels, every score method."""
    assert lr.n_features == 4
    assert lr.feature_names == models.IRIS_FEATURES
    assert lr.features == tuple(Feature(n, "numeric", "FP64") for n in models.IRIS_FEATURES)
    assert lr.classes == ("setosa", "versicolor", "virginica")
    assert all(type(c) is str for c in lr.classes)
    assert lr.label_datatype == "BYTES"
    assert lr.methods == ("predict", "predict_proba", "predict_log_proba", "decision_function")
    assert lr.estimator_type == "classifier"
    assert lr.allow_nan is False
    assert lr.tensor_datatype == "FP64"
    assert lr.output_datatype("predict") == "BYTES"
    assert lr.output_datatype("predict_proba") == "FP64"
    assert lr.output_shape("predict") == [-1]
    assert lr.output_shape("predict_proba") == [-1, 3]
    assert lr.output_shape("decision_function") == [-1, 3]


def test_random_forest(rf: ModelSchema) -> None:
    """Unnamed features, integer classes as INT64, NaN allowed (scikit-learn >= 1.4)."""
    assert (rf.n_features, rf.features, rf.feature_names) == (6, None, None)
    assert rf.classes == (0, 1, 2)
    assert all(type(c) is int for c in rf.classes)
    assert rf.label_datatype == "INT64"
    assert rf.methods == ("predict", "predict_proba", "predict_log_proba")
    assert rf.allow_nan is True
    assert rf.tensor_datatype == "FP64"
    assert rf.output_shape("predict_log_proba") == [-1, 3]


def test_ridge(ridge: ModelSchema) -> None:
    assert ridge.methods == ("predict",)
    assert (ridge.classes, ridge.label_datatype) == (None, "FP64")
    assert ridge.estimator_type == "regressor"
    assert ridge.n_features == 3
    assert ridge.n_outputs == 1
    assert ridge.output_shape("predict") == [-1]
    assert ridge.output_datatype("predict") == "FP64"
    assert ridge.allow_nan is False


def test_column_transformer_pipeline(house_model: Pipeline) -> None:
    """The one-hot column is BYTES/string (from categories_); others numeric FP64."""
    schema = describe(house_model)
    assert schema.features == (
        Feature("area", *FP64),
        Feature("bedrooms", *FP64),
        Feature("location", "string", "BYTES"),
    )
    assert schema.tensor_datatype is None  # mixed: one tensor per feature
    assert schema.methods == ("predict",)


def test_column_transformer_pipeline_with_sample(house_model: Pipeline) -> None:
    """A sample's column dtypes are the training dtypes: bedrooms becomes INT64."""
    sample = models.house_frame(5)[0]
    schema = describe(house_model, sample)
    assert schema.features == (
        Feature("area", *FP64),
        Feature("bedrooms", "numeric", "INT64"),
        Feature("location", "string", "BYTES"),
    )


def test_sample_dtypes_are_widened(house_model: Pipeline) -> None:
    """Narrow sample dtypes are reported as INT64 / FP64."""
    sample = models.house_frame(5)[0].astype({"area": np.float32, "bedrooms": np.uint8})
    schema = describe(house_model, sample)
    assert [f.datatype for f in schema.features] == ["FP64", "INT64", "BYTES"]


@pytest.mark.parametrize(
    ("cat", "num"),
    [
        ([2], [0, 1]),
        ([False, False, True], [True, True, False]),
        (["location"], ["area", "bedrooms"]),
        (make_column_selector(dtype_include=object), make_column_selector(dtype_include="number")),
    ],
    ids=["int-indices", "bool-mask", "names", "selector"],
)
def test_column_transformer_column_specs(cat: Any, num: Any) -> None:
    """However the encoder's columns are given, the string column is found."""
    schema = describe(_house_with(cat, num))
    assert [(f.name, f.kind, f.datatype) for f in schema.features] == [
        ("area", "numeric", "FP64"),
        ("bedrooms", "numeric", "FP64"),
        ("location", "string", "BYTES"),
    ]


@pytest.mark.parametrize(
    ("cat", "num"),
    [(slice(2, 3), slice(0, 2)), (slice("location", "location"), slice("area", "bedrooms"))],
    ids=["int-slice", "label-slice"],
)
def test_column_transformer_slice_columns(cat: slice, num: slice) -> None:
    """ColumnTransformer accepts slices; _resolve_columns iterates them and raises TypeError."""
    schema = describe(_house_with(cat, num))
    assert schema.features[2] == Feature("location", "string", "BYTES")


def test_encoder_behind_imputer_in_column_pipeline() -> None:
    """The standard recipe for categorical columns with gaps: impute, then one-hot.

    Only the first step of the column's Pipeline is inspected, so 'location' is reported
    numeric and every string request is rejected.
    """
    encoder = make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder())
    schema = describe(_house_with(["location"], ["area", "bedrooms"], encoder))
    assert schema.features[2] == Feature("location", "string", "BYTES")


def test_encoder_first_in_column_pipeline() -> None:
    encoder = make_pipeline(OneHotEncoder(), StandardScaler(with_mean=False))
    schema = describe(_house_with(["location"], ["area", "bedrooms"], encoder))
    assert schema.features[2] == Feature("location", "string", "BYTES")


def test_numeric_categories_are_numeric() -> None:
    """An encoder fitted on integers reports the integers' datatype, kind numeric."""
    schema = describe(_house_with(["bedrooms"], ["area"], OrdinalEncoder()))
    assert schema.features[1] == Feature("bedrooms", "numeric", "INT64")
    assert schema.features[2] == Feature("location", "numeric", "FP64")  # dropped: no info


def test_bare_encoder() -> None:
    frame = pd.DataFrame({"colour": ["red", "blue", "red"]})
    schema = describe(OneHotEncoder().fit(frame))
    assert schema.features == (Feature("colour", "string", "BYTES"),)
    assert schema.tensor_datatype == "BYTES"
    assert schema.methods == ("transform",)
    assert schema.estimator_type == "transformer"


def test_hist_gradient_boosting(hgb: ModelSchema) -> None:
    """Binary: decision_function is 1-D; NaN is allowed."""
    assert hgb.allow_nan is True
    assert hgb.classes == (0, 1)
    assert hgb.methods == ("predict", "predict_proba", "decision_function")
    assert hgb.output_shape("decision_function") == [-1]
    assert hgb.output_shape("predict_proba") == [-1, 2]


@pytest.mark.parametrize(
    ("n_classes", "shape"), [(2, [-1]), (3, [-1, 3]), (4, [-1, 4])], ids=["2", "3", "4"]
)
def test_decision_function_shape(n_classes: int, shape: list[int]) -> None:
    """Binary decision_function is [N]; multiclass [N, n_classes]; matches sklearn."""
    x, _ = _xy(80)
    y = np.arange(80) % n_classes
    model = LogisticRegression().fit(x, y)
    schema = describe(model)
    assert schema.output_shape("decision_function") == shape
    assert list(model.decision_function(x[:5]).shape[1:]) == shape[1:]


@pytest.mark.parametrize(
    ("dtype", "datatype"),
    [
        (np.int64, "INT64"),
        (np.int32, "INT64"),
        (np.int8, "INT64"),
        (np.uint8, "INT64"),
        (np.uint64, "UINT64"),
        (np.float64, "FP64"),
        (np.bool_, "BOOL"),
        (object, "BYTES"),
    ],
    ids=lambda v: getattr(v, "__name__", str(v)),
)
def test_label_datatype_follows_classes(dtype: Any, datatype: str) -> None:
    x, _ = _xy()
    y = (np.arange(60) % 2).astype(dtype)
    if dtype is object:
        y = np.where(y, "yes", "no").astype(object)
    schema = describe(LogisticRegression().fit(x, y))
    assert schema.label_datatype == datatype
    assert schema.output_datatype("predict") == datatype
    assert schema.output_datatype("decision_function") == "FP64"


def test_multi_output_regressor_predict_shape() -> None:
    x, _ = _xy()
    model = RandomForestRegressor(n_estimators=2, random_state=0).fit(x, np.c_[x[:, 0], x[:, 1]])
    schema = describe(model)
    assert schema.n_outputs == 2
    assert schema.output_shape("predict") == [-1, 2]


@pytest.mark.parametrize(
    "make",
    [
        lambda: make_pipeline(StandardScaler(), RandomForestRegressor(n_estimators=2)),
        lambda: Ridge(),
    ],
    ids=["pipeline-forest", "ridge"],
)
def test_multi_output_shape_in_pipeline_or_linear(make: Any) -> None:
    """predict returns [N, 2] but the metadata says [-1] (no n_outputs_ attribute)."""
    x, _ = _xy()
    model = make().fit(x, np.c_[x[:, 0], x[:, 1]])
    assert model.predict(x[:3]).shape == (3, 2)
    assert describe(model).output_shape("predict") == [-1, 2]


def test_transformer_only() -> None:
    x, _ = _xy()
    schema = describe(StandardScaler().fit(x))
    assert schema.methods == ("transform",)
    assert (schema.estimator_type, schema.classes, schema.n_features) == ("transformer", None, 3)


class _Duck:
    """A duck-typed model (not a BaseEstimator): fitted attributes and predict only."""

    n_features_in_ = 2
    classes_ = np.array([0, 1])

    def predict(self, x: Any) -> np.ndarray:
        return np.zeros(len(x), dtype=np.int64)


def test_duck_typed_model() -> None:
    """sklearn >= 1.6 is_classifier() raises for objects without __sklearn_tags__."""
    schema = describe(_Duck())
    assert (schema.n_features, schema.methods, schema.classes) == (2, ("predict",), (0, 1))
    assert (schema.estimator_type, schema.allow_nan) == ("estimator", False)


# ------------------------------------------------------------------ ModelSchema


def _schema(*kinds: str, classes: tuple | None = None) -> ModelSchema:
    features = tuple(
        Feature(f"f{i}", kind, "FP64" if kind == "numeric" else "BYTES")
        for i, kind in enumerate(kinds)
    )
    return ModelSchema(
        n_features=len(kinds) or None,
        features=features or None,
        methods=METHODS,
        classes=classes,
        label_datatype="INT64",
        allow_nan=False,
        estimator_type="classifier",
    )


@pytest.mark.parametrize(
    ("kinds", "expected"),
    [
        ((), "FP64"),
        (("numeric", "numeric"), "FP64"),
        (("string", "string"), "BYTES"),
        (("numeric", "string"), None),
    ],
    ids=["no-names", "numeric", "strings", "mixed"],
)
def test_tensor_datatype(kinds: tuple[str, ...], expected: str | None) -> None:
    assert _schema(*kinds).tensor_datatype == expected


@pytest.mark.parametrize(
    ("method", "classes", "shape"),
    [
        ("predict_proba", (0, 1), [-1, 2]),
        ("predict_log_proba", (0, 1, 2), [-1, 3]),
        ("decision_function", (0, 1), [-1]),
        ("decision_function", (0, 1, 2), [-1, 3]),
        ("predict", (0, 1), [-1]),
        ("transform", None, [-1, -1]),
        ("predict_proba", None, [-1, -1]),
    ],
    ids=["proba-2", "log-proba-3", "decision-2", "decision-3", "predict", "transform", "?"],
)
def test_output_shape(method: str, classes: tuple | None, shape: list[int]) -> None:
    assert _schema("numeric", classes=classes).output_shape(method) == shape


# ------------------------------------------------------------------ v2_datatype


@pytest.mark.parametrize(
    ("dtype", "expected"),
    [
        (np.bool_, "BOOL"),
        (np.int8, "INT8"),
        (np.int16, "INT16"),
        (np.int32, "INT32"),
        (np.int64, "INT64"),
        (np.uint8, "UINT8"),
        (np.uint16, "UINT16"),
        (np.uint32, "UINT32"),
        (np.uint64, "UINT64"),
        (np.float16, "FP16"),
        (np.float32, "FP32"),
        (np.float64, "FP64"),
        ("U5", "BYTES"),
        ("S5", "BYTES"),
        (object, "BYTES"),
        ("datetime64[ns]", "BYTES"),
    ],
    ids=str,
)
def test_v2_datatype(dtype: Any, expected: str) -> None:
    assert v2_datatype(np.dtype(dtype)) == expected
