"""predictor.codec: V2 tensors and V1 rows/records -> the estimator's X, checked."""

from __future__ import annotations

from typing import Any

import models
import numpy as np
import pandas as pd
import pytest
from kserve.protocol.infer_type import InferInput
from threadpoolctl import threadpool_limits

from predictor.codec import v1_to_x, v2_to_x
from predictor.errors import FeatureMismatch, InvalidTensor, MalformedBody
from predictor.schema import Feature, ModelSchema, describe

IRIS = models.IRIS_FEATURES


@pytest.fixture(scope="module")
def lr() -> ModelSchema:
    """Four named numeric features."""
    return describe(models.lr_pipeline())


@pytest.fixture(scope="module")
def ridge() -> ModelSchema:
    """Three unnamed features, NaN not allowed."""
    return describe(models.ridge())


@pytest.fixture(scope="module")
def rf() -> ModelSchema:
    """Six unnamed features, NaN allowed."""
    return describe(models.random_forest())


@pytest.fixture(scope="module")
def house() -> ModelSchema:
    """area FP64, bedrooms INT64 (from the sample), location BYTES."""
    return describe(models.column_pipeline(), models.house_frame(5)[0])


@pytest.fixture(scope="module")
def hgb() -> ModelSchema:
    with threadpool_limits(1):
        return describe(models.hist_gradient_boosting())


def t(name: str, shape: list[int], datatype: str, data: Any) -> InferInput:
    """A tensor as parsed from JSON."""
    tensor = InferInput(name=name, shape=shape, datatype=datatype)
    tensor._data = data
    return tensor


def house_inputs(**override: InferInput) -> list[InferInput]:
    inputs = {
        "area": t("area", [2], "FP64", [55.5, 120.0]),
        "bedrooms": t("bedrooms", [2], "INT64", [1, 3]),
        "location": t("location", [2], "BYTES", ["north", "west"]),
    }
    inputs.update(override)
    return list(inputs.values())


def _many_features(n: int) -> ModelSchema:
    features = tuple(Feature(f"f{i:02d}", "numeric", "FP64") for i in range(n))
    return ModelSchema(n, features, ("predict",), None, "FP64", False, "regressor")


# ------------------------------------------------------------------ V2: one 2-D tensor


def test_matrix_becomes_named_dataframe(lr: ModelSchema) -> None:
    """A model fitted on a DataFrame gets a DataFrame with its column names."""
    x = v2_to_x([t("input-0", [2, 4], "FP64", [[1, 2, 3, 4], [5, 6, 7, 8]])], lr)
    assert isinstance(x, pd.DataFrame)
    assert list(x.columns) == IRIS
    assert x.to_numpy().tolist() == [[1, 2, 3, 4], [5, 6, 7, 8]]


def test_matrix_without_names_is_ndarray(ridge: ModelSchema) -> None:
    x = v2_to_x([t("whatever", [1, 3], "FP32", [0.5, 1.5, 2.5])], ridge)
    assert isinstance(x, np.ndarray)
    assert (x.shape, x.dtype) == ((1, 3), np.float32)
    assert x.tolist() == [[0.5, 1.5, 2.5]]


@pytest.mark.parametrize(
    ("datatype", "dtype"),
    [("INT64", np.int64), ("INT32", np.int32), ("FP16", np.float16), ("UINT8", np.uint8)],
)
def test_matrix_keeps_numeric_dtype(ridge: ModelSchema, datatype: str, dtype: type) -> None:
    """Any numeric datatype is accepted for numeric columns and passed on unchanged."""
    x = v2_to_x([t("x", [1, 3], datatype, [1, 2, 3])], ridge)
    assert x.dtype == dtype
    assert x.tolist() == [[1, 2, 3]]


def test_matrix_of_strings_for_a_string_model() -> None:
    from sklearn.preprocessing import OneHotEncoder

    schema = describe(OneHotEncoder().fit(pd.DataFrame({"a": ["x", "y"], "b": ["p", "q"]})))
    x = v2_to_x([t("input-0", [1, 2], "BYTES", [b"x", "q"])], schema)
    assert list(x.columns) == ["a", "b"]
    assert x.iloc[0].tolist() == ["x", "q"]
    assert all(type(v) is str for v in x.iloc[0])


@pytest.mark.parametrize(
    ("tensor", "error", "message"),
    [
        (
            t("input-0", [4], "FP64", [1, 2, 3, 4]),
            InvalidTensor,
            "input 'input-0': expected a 2-D tensor [N, 4], got shape [4]; "
            "for one row send shape [1, 4]",
        ),
        (
            t("input-0", [1, 1, 4], "FP64", [1, 2, 3, 4]),
            InvalidTensor,
            "input 'input-0': expected a 2-D tensor [N, 4], got shape [1, 1, 4]",
        ),
        (
            t("input-0", [1, 3], "FP64", [1, 2, 3]),
            InvalidTensor,
            "input 'input-0': expected 4 features per row (shape [N, 4]), got shape [1, 3]",
        ),
        (
            t("input-0", [1, 4], "BYTES", ["1", "2", "3", "4"]),
            InvalidTensor,
            "input 'input-0': the model expects numbers here (a numeric datatype such as FP64), "
            "got BYTES",
        ),
        (
            t("input-0", [1, 4], "FP64", [1, 2, None, 4]),
            InvalidTensor,
            "input 'input-0': this model cannot take NaN or infinity; found nan at index [0, 2]",
        ),
        (
            t("input-0", [2, 4], "FP32", [1, 2, 3, 4, 5, 6, 7, 1e39]),
            InvalidTensor,
            "found inf at index [1, 3] (a value too large for its datatype also becomes infinity)",
        ),
    ],
    ids=["1-D", "3-D", "width", "kind", "nan", "fp32-overflow"],
)
def test_matrix_errors(lr: ModelSchema, tensor: InferInput, error: type, message: str) -> None:
    with pytest.raises(error) as caught, np.errstate(over="ignore"):
        v2_to_x([tensor], lr)
    assert message in str(caught.value)


def test_matrix_for_mixed_model_is_refused(house: ModelSchema) -> None:
    with pytest.raises(FeatureMismatch) as caught:
        v2_to_x([t("input-0", [1, 3], "FP64", [1, 2, 3])], house)
    assert str(caught.value) == (
        "input 'input-0': this model mixes numeric and string features "
        "(area (FP64), bedrooms (INT64), location (BYTES)); "
        "send one [N] tensor per feature, named after it"
    )


@pytest.mark.parametrize(
    "value", [float("nan"), float("inf"), float("-inf")], ids=["nan", "inf", "-inf"]
)
def test_matrix_non_finite_allowed_when_model_takes_nan(
    hgb: ModelSchema, ridge: ModelSchema, value: float
) -> None:
    """HistGradientBoosting (allow_nan) gets the values as sent; Ridge refuses them."""
    tensor = t("x", [1, 4], "FP64", [1.0, value, 2.0, 3.0])
    x = v2_to_x([tensor], hgb)
    assert np.array_equal(x, [[1.0, value, 2.0, 3.0]], equal_nan=True)
    with pytest.raises(InvalidTensor, match="cannot take NaN or infinity"):
        v2_to_x([t("x", [1, 3], "FP64", [1.0, value, 2.0])], ridge)


def test_matrix_width_unknown_is_not_checked() -> None:
    schema = ModelSchema(None, None, ("predict",), None, "FP64", False, "estimator")
    assert v2_to_x([t("x", [1, 5], "FP64", [1, 2, 3, 4, 5])], schema).shape == (1, 5)
    with pytest.raises(InvalidTensor, match=r"expected a 2-D tensor \[N, F\]"):
        v2_to_x([t("x", [5], "FP64", [1, 2, 3, 4, 5])], schema)


# ------------------------------------------------------------------ V2: one tensor per feature


def test_feature_tensors_in_model_column_order(house: ModelSchema) -> None:
    """Inputs in any order, [N] or [N, 1], become columns in the model's order."""
    inputs = [
        t("location", [2, 1], "BYTES", [[b"north"], ["s\u00fcd"]]),
        t("bedrooms", [2], "INT32", [1, 3]),
        t("area", [2, 1], "FP32", [[50.5], [80.0]]),
    ]
    x = v2_to_x(inputs, house)
    assert list(x.columns) == ["area", "bedrooms", "location"]
    assert x["area"].tolist() == [50.5, 80.0]
    assert x["bedrooms"].tolist() == [1, 3]
    assert x["location"].tolist() == ["north", "s\u00fcd"]
    assert [type(v) for v in x["location"]] == [str, str]  # bytes decoded as UTF-8


def test_feature_tensors_keep_dtype(house: ModelSchema) -> None:
    x = v2_to_x(house_inputs(bedrooms=t("bedrooms", [2], "INT32", [1, 3])), house)
    assert x.dtypes.to_dict() == {
        "area": np.dtype(np.float64),
        "bedrooms": np.dtype(np.int32),
        "location": np.dtype(object),
    }


def test_feature_tensors_for_numeric_named_model(lr: ModelSchema) -> None:
    inputs = [t(name, [1], "FP64", [float(i)]) for i, name in enumerate(reversed(IRIS))]
    x = v2_to_x(inputs, lr)
    assert list(x.columns) == IRIS
    assert x.iloc[0].tolist() == [3.0, 2.0, 1.0, 0.0]


@pytest.mark.parametrize(
    ("inputs", "error", "message"),
    [
        (
            lambda: house_inputs()[:2],
            FeatureMismatch,
            "missing features: location. The model expects one [N] tensor per feature: "
            "area, bedrooms, location",
        ),
        (
            lambda: [*house_inputs(), t("garage", [2], "INT64", [0, 1])],
            FeatureMismatch,
            "unknown inputs: garage. The model expects",
        ),
        (
            lambda: [*house_inputs()[:2], t("locaton", [2], "BYTES", ["a", "b"])],
            FeatureMismatch,
            "missing features: location; unknown inputs: locaton.",
        ),
        (
            lambda: [*house_inputs(), t("area", [2], "FP64", [1, 2])],
            FeatureMismatch,
            "inputs named more than once: area",
        ),
        (
            lambda: house_inputs(bedrooms=t("bedrooms", [3], "INT64", [1, 2, 3])),
            InvalidTensor,
            "input 'bedrooms' has 3 rows but 'area' has 2; every feature needs the same row count",
        ),
        (
            lambda: house_inputs(area=t("area", [1, 2], "FP64", [1, 2])),
            InvalidTensor,
            "input 'area': a feature tensor must have shape [N] or [N, 1], got [1, 2]",
        ),
        (
            lambda: house_inputs(location=t("location", [2], "FP64", [1, 2])),
            InvalidTensor,
            "input 'location': the model was trained on strings here (datatype BYTES), got FP64",
        ),
        (
            lambda: house_inputs(bedrooms=t("bedrooms", [2], "BYTES", ["1", "2"])),
            InvalidTensor,
            "input 'bedrooms': the model expects numbers here (a numeric datatype such as "
            "INT64), got BYTES",
        ),
        (
            lambda: house_inputs(area=t("area", [2], "FP64", [1.0, None])),
            InvalidTensor,
            "input 'area': this model cannot take NaN or infinity; found nan at index [1]",
        ),
        (
            lambda: house_inputs(location=t("location", [2], "BYTES", [b"ok", b"\xff"])),
            InvalidTensor,
            "input 'location': element 1 is not UTF-8 text",
        ),
        (
            lambda: house_inputs(area=t("area", [2], "FP64", [1.0])),
            InvalidTensor,
            "input 'area': shape [2] holds 2 values but the data has 1",
        ),
    ],
    ids=[
        "missing",
        "unknown",
        "missing-and-unknown",
        "duplicate",
        "unequal-rows",
        "bad-shape",
        "string-feature-got-numbers",
        "numeric-feature-got-strings",
        "nan",
        "not-utf8",
        "data-length",
    ],
)
def test_feature_tensor_errors(house: ModelSchema, inputs, error: type, message: str) -> None:
    with pytest.raises(error) as caught:
        v2_to_x(inputs(), house)
    assert message in str(caught.value)


def test_feature_tensors_nan_allowed_when_model_takes_nan() -> None:
    schema = ModelSchema(
        2, (Feature("a", "numeric", "FP64"), Feature("b", "numeric", "FP64")),
        ("predict",), None, "FP64", True, "regressor",
    )  # fmt: skip
    x = v2_to_x([t("a", [1], "FP64", [None]), t("b", [1], "FP64", [2.0])], schema)
    assert np.isnan(x["a"][0]) and x["b"][0] == 2.0


def test_long_name_lists_are_cut() -> None:
    """Messages list at most 20 names, then the total."""
    schema = _many_features(25)
    with pytest.raises(FeatureMismatch) as caught:
        v2_to_x([t("f00", [1], "FP64", [1.0]), t("zz", [1], "FP64", [1.0])], schema)
    message = str(caught.value)
    assert "missing features: f01, f02," in message
    assert "f20, ... (24 in all); unknown inputs: zz." in message
    assert "f21" not in message.split("unknown")[0]


def test_several_inputs_for_a_model_without_names(ridge: ModelSchema) -> None:
    with pytest.raises(FeatureMismatch) as caught:
        v2_to_x([t("a", [1], "FP64", [1]), t("b", [1], "FP64", [2])], ridge)
    assert str(caught.value) == (
        "got 2 inputs (a, b) but the model has no feature names; send one 2-D tensor [N, 3]"
    )


def test_no_inputs(ridge: ModelSchema) -> None:
    with pytest.raises(MalformedBody, match="request has no inputs"):
        v2_to_x([], ridge)


# ------------------------------------------------------------------ V1


@pytest.mark.parametrize("key", ["instances", "inputs"])
def test_v1_rows_named_model(lr: ModelSchema, key: str) -> None:
    x = v1_to_x({key: [[1, 2, 3, 4], [5.5, 6, 7, 8]]}, lr)
    assert isinstance(x, pd.DataFrame)
    assert list(x.columns) == IRIS
    assert x.to_numpy().tolist() == [[1, 2, 3, 4], [5.5, 6, 7, 8]]


def test_v1_rows_unnamed_model(ridge: ModelSchema) -> None:
    x = v1_to_x({"instances": [[1, 2, 3]]}, ridge)
    assert isinstance(x, np.ndarray)
    assert (x.dtype, x.tolist()) == (np.float64, [[1.0, 2.0, 3.0]])


def test_v1_records_in_model_column_order(house: ModelSchema) -> None:
    rows = [
        {"location": "north", "bedrooms": 2, "area": 50.0},
        {"area": 70, "location": "east", "bedrooms": 3},
    ]
    x = v1_to_x({"instances": rows}, house)
    assert list(x.columns) == ["area", "bedrooms", "location"]
    assert x["area"].tolist() == [50.0, 70.0]
    assert x["bedrooms"].tolist() == [2, 3]
    assert x["bedrooms"].dtype.kind == "i"
    assert x["location"].tolist() == ["north", "east"]


def test_v1_rows_mixed_model(house: ModelSchema) -> None:
    x = v1_to_x({"instances": [[50.0, 2, "west"]]}, house)
    assert x.iloc[0].tolist() == [50.0, 2, "west"]


def test_v1_nan_allowed_when_model_takes_nan(rf: ModelSchema, ridge: ModelSchema) -> None:
    x = v1_to_x({"instances": [[None, 1, 2, 3, 4, 5]]}, rf)
    assert np.isnan(x[0, 0]) and x[0, 1:].tolist() == [1, 2, 3, 4, 5]
    with pytest.raises(InvalidTensor) as caught:
        v1_to_x({"instances": [[1, None, 3]]}, ridge)
    assert str(caught.value).startswith(
        "input 'instances': this model cannot take NaN or infinity; found nan at index [0, 1]"
    )


@pytest.mark.parametrize(
    ("body", "error", "message"),
    [
        ([[1, 2, 3, 4]], MalformedBody, "V1 body must be a JSON object, got list"),
        ({"rows": [[1]]}, MalformedBody, "V1 body needs 'instances' (or 'inputs')"),
        ({"instances": []}, MalformedBody, "'instances' must be a non-empty list of rows, got []"),
        ({"inputs": "1,2"}, MalformedBody, "'inputs' must be a non-empty list of rows"),
        (
            {"instances": [1, 2, 3, 4]},
            MalformedBody,
            "'instances' must hold rows that are all lists (values in feature order) or all "
            "objects keyed by feature name; got int items",
        ),
        (
            {"instances": [[1, 2, 3, 4], {"sepal_length": 1}]},
            MalformedBody,
            "must hold rows that are all lists",
        ),
        (
            {"instances": [[1, 2, 3, 4], [1, 2, 3]]},
            InvalidTensor,
            "instances[1] has 3 values; the model expects 4",
        ),
        (
            {"instances": [[1, 2, "x", 4]]},
            InvalidTensor,
            "instances: feature 'petal_length' takes numbers, got 'x'",
        ),
        (
            {"instances": [[1, True, 3, 4]]},
            InvalidTensor,
            "instances: feature 'sepal_width' takes numbers, got True",
        ),
        (
            {"instances": [[1, 2, [3], 4]]},
            InvalidTensor,
            "feature 'petal_length' takes numbers, got [3]",
        ),
        (
            {"instances": [{"sepal_length": 1, "sepal_width": 2, "petal_length": 3}]},
            FeatureMismatch,
            "missing features: petal_width. Expected keys: " + ", ".join(IRIS),
        ),
        (
            {"instances": [dict(zip(IRIS, [1, 2, 3, 4], strict=True)), {"sepal_length": 1}]},
            FeatureMismatch,
            "missing features: sepal_width, petal_length, petal_width.",
        ),
        (
            {"instances": [{**dict(zip(IRIS, [1, 2, 3, 4], strict=True)), "b": 1, "a": 2}]},
            FeatureMismatch,
            "unknown keys: a, b. Expected keys:",
        ),
        (
            {"instances": [{"sepal_length": 1, "sepal_width": 2, "petal_length": 3, "pw": 4}]},
            FeatureMismatch,
            "missing features: petal_width; unknown keys: pw.",
        ),
        (
            {"instances": [[1, 2, 3, float("inf")]]},
            InvalidTensor,
            "input 'petal_width': this model cannot take NaN or infinity; found inf at index [0]",
        ),
    ],
    ids=[
        "not-object",
        "no-key",
        "empty",
        "not-list",
        "scalars",
        "mixed-rows",
        "width",
        "string-for-number",
        "bool-for-number",
        "nested",
        "record-missing",
        "record-missing-in-one-row",
        "record-unknown",
        "record-missing-and-unknown",
        "infinity",
    ],
)
def test_v1_errors_named_model(lr: ModelSchema, body: Any, error: type, message: str) -> None:
    with pytest.raises(error) as caught:
        v1_to_x(body, lr)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("body", "error", "message"),
    [
        (
            {"instances": [{"a": 1}]},
            FeatureMismatch,
            "'instances' holds objects but the model has no feature names; send lists of values",
        ),
        ({"instances": [[1, 2]]}, InvalidTensor, "instances[0] has 2 values; the model expects 3"),
        (
            {"instances": [[1, "abc", 3]]},
            InvalidTensor,
            "'instances' must hold numbers of equal-length rows",
        ),
    ],
    ids=["records", "width", "string"],
)
def test_v1_errors_unnamed_model(ridge: ModelSchema, body: Any, error: type, message: str) -> None:
    with pytest.raises(error) as caught:
        v1_to_x(body, ridge)
    assert message in str(caught.value)


def test_v1_string_feature_errors(house: ModelSchema) -> None:
    with pytest.raises(InvalidTensor, match="instances: feature 'location' takes strings, got 3"):
        v1_to_x({"instances": [[50.0, 2, 3]]}, house)
    with pytest.raises(InvalidTensor, match="feature 'location' takes strings, got None"):
        v1_to_x({"instances": [{"area": 1.0, "bedrooms": 1, "location": None}]}, house)


@pytest.mark.parametrize(
    ("row", "shown"), [(["1.5", 2, 3], "'1.5'"), ([True, 2, 3], "True")], ids=["str", "bool"]
)
def test_v1_unnamed_rows_reject_non_numbers(ridge: ModelSchema, row: list, shown: str) -> None:
    """np.asarray(rows, float64) turns "1.5" into 1.5 and true into 1.0; named models refuse."""
    with pytest.raises(InvalidTensor, match=shown):
        v1_to_x({"instances": [row]}, ridge)
