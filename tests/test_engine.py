"""Compiled engine: ONNX conversion, parity with scikit-learn, per-method fallback, modes."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.datasets import load_iris, make_classification, make_regression
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from predictor.engine import (
    ATOL,
    METHODS,
    RTOL,
    Engine,
    EngineConfigError,
    OnnxUnavailableError,
    build_engine,
    make_probe,
    parity,
)


@pytest.fixture(scope="module")
def rf_data():
    x, y = make_classification(n_samples=3000, n_features=20, n_informative=10, random_state=0)
    model = RandomForestClassifier(n_estimators=100, random_state=0).fit(x[:2000], y[:2000])
    return model, x[2000:]


@pytest.fixture(scope="module")
def iris_lr():
    iris = load_iris()
    y = np.array(iris.target_names)[iris.target]  # string classes
    model = LogisticRegression(max_iter=1000).fit(iris.data, y)
    return model, iris.data


def _max_abs(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a, float) - np.asarray(b, float))))


def test_random_forest_is_served_by_onnx_with_parity(rf_data):
    model, x = rf_data
    engine = build_engine(model)
    assert engine.methods() == {
        "predict": "onnx",
        "predict_proba": "onnx",
        "predict_log_proba": "onnx",
    }
    labels = engine.run("predict", x)
    assert labels.dtype == model.classes_.dtype
    np.testing.assert_array_equal(labels, model.predict(x))  # all 1000 held-out rows
    proba = engine.run("predict_proba", x)
    assert proba.dtype == np.float64 and proba.shape == (1000, 2)
    # probabilities are averages of 100 leaf fractions: ONNX agrees to float32 precision
    assert _max_abs(proba, model.predict_proba(x)) < 1e-6
    one = engine.run("predict", x[:1])
    assert one.shape == (1,) and one[0] == model.predict(x[:1])[0]


def test_string_class_logistic_regression(iris_lr):
    model, x = iris_lr
    engine = build_engine(model)
    assert set(engine.methods().values()) == {"onnx"}
    assert set(engine.methods()) == {
        "predict",
        "predict_proba",
        "predict_log_proba",
        "decision_function",
    }
    labels = engine.run("predict", x)
    assert labels.dtype == model.classes_.dtype  # '<U10', not ONNX's object strings
    np.testing.assert_array_equal(labels, model.predict(x))
    assert _max_abs(engine.run("predict_proba", x), model.predict_proba(x)) < 1e-6
    assert _max_abs(engine.run("decision_function", x), model.decision_function(x)) < 1e-5
    lp, ref = engine.run("predict_log_proba", x), model.predict_log_proba(x)
    assert lp.shape == ref.shape
    assert np.allclose(lp, ref, rtol=RTOL, atol=1e-4)


def test_binary_decision_function_shape():
    x, y = make_classification(n_samples=500, n_features=6, random_state=1)
    model = LogisticRegression().fit(x, y)
    engine = build_engine(model)
    assert engine.methods()["decision_function"] == "onnx"
    got = engine.run("decision_function", x)
    assert got.shape == (500,)
    assert _max_abs(got, model.decision_function(x)) < 1e-5


def test_regressor_output_shape_and_values():
    x, y = make_regression(n_samples=600, n_features=8, noise=1.0, random_state=0)
    model = RandomForestRegressor(n_estimators=30, random_state=0).fit(x, y)
    engine = build_engine(model)
    assert engine.methods() == {"predict": "onnx"}
    got, ref = engine.run("predict", x), model.predict(x)
    assert got.shape == ref.shape == (600,)
    assert got.dtype == np.float64
    assert np.all(np.abs(got - ref) <= ATOL + RTOL * np.abs(ref))


def test_pipeline_with_scaler_accepts_a_dataframe():
    iris = load_iris(as_frame=True)
    x = iris.data
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(x, iris.target)
    engine = build_engine(model)
    assert engine.methods()["predict"] == "onnx"
    assert engine.methods()["decision_function"] == "onnx"
    np.testing.assert_array_equal(engine.run("predict", x), model.predict(x))
    assert _max_abs(engine.run("predict_proba", x), model.predict_proba(x)) < 1e-6
    # and a plain ndarray in the same column order gives the same answer
    np.testing.assert_array_equal(engine.run("predict", x.to_numpy()), model.predict(x))


def test_sklearn_mode_serves_everything_with_scikit_learn(rf_data):
    model, x = rf_data
    engine = build_engine(model, mode="sklearn")
    assert set(engine.methods().values()) == {"sklearn"}
    np.testing.assert_array_equal(engine.run("predict_proba", x), model.predict_proba(x))


def test_run_many_matches_single_calls(iris_lr):
    model, x = iris_lr
    engine = build_engine(model)
    both = engine.run_many(["predict", "predict_proba"], x)
    np.testing.assert_array_equal(both["predict"], engine.run("predict", x))
    np.testing.assert_array_equal(both["predict_proba"], engine.run("predict_proba", x))


class Unconvertible(ClassifierMixin, BaseEstimator):
    """A classifier skl2onnx knows nothing about."""

    def fit(self, x, y):
        self.classes_ = np.unique(y)
        self.n_features_in_ = np.asarray(x).shape[1]
        return self

    def predict(self, x):
        return np.where(np.asarray(x)[:, 0] > 0, self.classes_[-1], self.classes_[0])


def test_unconvertible_estimator_falls_back_with_a_logged_reason(caplog):
    x, y = make_classification(n_samples=100, n_features=4, random_state=0)
    model = Unconvertible().fit(x, y)
    with caplog.at_level(logging.INFO, logger="predictor.engine"):
        engine = build_engine(model)
    assert engine.methods() == {"predict": "sklearn"}
    assert "skl2onnx" in engine.reasons["predict"]
    lines = [r.getMessage() for r in caplog.records if "served by scikit-learn" in r.getMessage()]
    assert len(lines) == 1 and "predict" in lines[0]
    np.testing.assert_array_equal(engine.run("predict", x), model.predict(x))


def test_onnx_mode_fails_with_a_clear_message():
    x, y = make_classification(n_samples=100, n_features=4, random_state=0)
    model = Unconvertible().fit(x, y)
    with pytest.raises(OnnxUnavailableError) as info:
        build_engine(model, mode="onnx")
    assert isinstance(info.value, ValueError)
    msg = str(info.value)
    assert "engine mode 'onnx'" in msg and "Unconvertible" in msg and "predict" in msg


def _onnx_file(model, n_features, path):
    from skl2onnx import to_onnx

    onx = to_onnx(model, np.zeros((1, n_features), np.float32), options={"zipmap": False})
    path.write_bytes(onx.SerializeToString())
    return path


def test_a_mismatching_onnx_file_fails_parity_per_method(rf_data, tmp_path):
    model, _ = rf_data
    x_tr, ytr = make_classification(n_samples=500, n_features=20, random_state=5)
    other = RandomForestClassifier(n_estimators=5, random_state=9).fit(x_tr, ytr)
    path = _onnx_file(other, 20, tmp_path / "model.onnx")
    engine = build_engine(model, onnx_path=path)
    assert set(engine.methods().values()) == {"sklearn"}
    assert "parity check failed" in engine.reasons["predict"]
    assert "labels differ" in engine.reasons["predict"]
    assert "parity check failed" in engine.reasons["predict_proba"]
    with pytest.raises(OnnxUnavailableError, match="parity check failed"):
        build_engine(model, mode="onnx", onnx_path=path)


def test_an_onnx_file_alone_is_served_from_its_outputs(iris_lr, tmp_path):
    model, x = iris_lr
    path = _onnx_file(model, 4, tmp_path / "model.onnx")
    engine = build_engine(None, onnx_path=path)
    assert engine.methods() == {
        "predict": "onnx",
        "predict_proba": "onnx",
        "predict_log_proba": "onnx",
    }
    assert engine.run("predict", x).tolist() == model.predict(x).tolist()
    assert _max_abs(engine.run("predict_proba", x), model.predict_proba(x)) < 1e-5
    with pytest.raises(EngineConfigError):
        build_engine(None, onnx_path=path, mode="sklearn")


def test_a_matching_onnx_file_next_to_the_artifact_is_used(rf_data, tmp_path):
    model, x = rf_data
    path = _onnx_file(model, 20, tmp_path / "model.onnx")
    engine = build_engine(model, onnx_path=path, mode="onnx")
    assert engine.methods()["predict"] == "onnx"
    np.testing.assert_array_equal(engine.run("predict", x), model.predict(x))


def test_user_probe_is_used_and_derived_probe_has_the_right_shape(rf_data):
    model, x = rf_data
    probe = make_probe(model)
    assert probe is not None and probe.shape[1] == 20 and probe.shape[0] >= 256
    engine = build_engine(model, probe=x[:50])
    assert engine.methods()["predict"] == "onnx"
    # a probe of the wrong width makes scikit-learn fail: that is a reason, not a crash
    engine = build_engine(model, probe=np.zeros((3, 7)))
    assert set(engine.methods().values()) == {"sklearn"}
    assert all("probe" in r for r in engine.reasons.values())


def test_parity_rule_numbers():
    ref = np.array([[1.0, 0.0], [0.25, 0.75]])
    # limits are 1e-5 + 1e-4*|ref|: 1.1e-4 at 1.0, 1e-5 at 0.0
    assert parity(ref, ref + np.array([[1.0e-4, 0.9e-5], [0, 0]]), labels=False) is None
    assert parity(ref, ref + np.array([[1.2e-4, 0.0], [0, 0]]), labels=False) is not None
    assert parity(ref, ref + np.array([[0.0, 2e-5], [0, 0]]), labels=False) is not None
    assert "shape" in parity(ref, ref[:1], labels=False)
    assert parity(np.array(["a", "b"]), np.array(["a", "c"]), labels=True) == (
        "1/2 labels differ on the probe"
    )
    assert parity(np.array([-np.inf, 0.0]), np.array([-np.inf, 0.0]), labels=False) is None
    assert parity(np.array([-np.inf, 0.0]), np.array([-50.0, 0.0]), labels=False) is not None


def test_engine_rejects_unknown_method_and_mode(iris_lr):
    model, x = iris_lr
    engine = build_engine(model, mode="sklearn")
    assert isinstance(engine, Engine)
    assert "transform" not in engine.methods()
    with pytest.raises(ValueError, match="not available"):
        engine.run("transform", x)
    with pytest.raises(EngineConfigError):
        build_engine(model, mode="fast")
    assert set(METHODS) >= set(engine.methods())
    df = pd.DataFrame(x)
    np.testing.assert_array_equal(engine.run("predict", df.to_numpy()), model.predict(x))


def test_column_transformer_with_categories_stays_on_scikit_learn():
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import Ridge
    from sklearn.preprocessing import OneHotEncoder

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "area": rng.uniform(30, 200, 120),
            "city": rng.choice(["oslo", "rome", "lima"], 120),
        }
    )
    y = frame["area"] * 3 + (frame["city"] == "oslo") * 50
    model = make_pipeline(
        ColumnTransformer(
            [("num", StandardScaler(), ["area"]), ("cat", OneHotEncoder(), ["city"])]
        ),
        Ridge(),
    ).fit(frame, y)
    engine = build_engine(model)
    assert engine.methods() == {"predict": "sklearn"}
    assert "ColumnTransformer" in engine.reasons["predict"]
    np.testing.assert_array_equal(engine.run("predict", frame), model.predict(frame))
    with pytest.raises(OnnxUnavailableError, match="ColumnTransformer"):
        build_engine(model, mode="onnx")


def _graph_of(runner):
    """The ONNX model a runner closes over (the runners are small closures)."""
    from predictor.onnxgraph import OnnxModel

    cells = [c.cell_contents for c in runner.__closure__ or ()]
    return next(c for c in cells if isinstance(c, OnnxModel))


def test_predict_alone_runs_a_graph_cut_down_to_the_labels(iris_lr):
    model, x = iris_lr
    engine = build_engine(model)
    labels_graph = _graph_of(engine._runners["predict"])
    proba_graph = _graph_of(engine._runners["predict_proba"])
    assert [o.name for o in labels_graph.outputs] == ["label"]  # no softmax, no probabilities
    assert "probabilities" in [o.name for o in proba_graph.outputs]
    assert engine.methods()["predict"] == "onnx"
    np.testing.assert_array_equal(engine.run("predict", x), model.predict(x))
    both = engine.run_many(["predict", "predict_proba"], x)  # one call of the main graph
    np.testing.assert_array_equal(both["predict"], model.predict(x))
    np.testing.assert_allclose(both["predict_proba"], model.predict_proba(x), rtol=RTOL, atol=ATOL)


def test_a_forest_keeps_one_graph_for_its_labels(rf_data):
    """A tree ensemble's one node makes labels and probabilities: nothing to cut."""
    model, x = rf_data
    engine = build_engine(model)
    assert _graph_of(engine._runners["predict"]) is _graph_of(engine._runners["predict_proba"])
    np.testing.assert_array_equal(engine.run("predict", x[:50]), model.predict(x[:50]))


def test_the_graph_runs_natively_with_the_same_outputs_and_errors(iris_lr):
    """run_raw skips InferenceSession.run's argument checks; results and errors match it."""
    model, x = iris_lr
    graph = _graph_of(build_engine(model)._runners["predict_proba"])
    assert graph._run == graph.session._sess.run  # the native call, not the wrapper
    ready = np.ascontiguousarray(x[:7], dtype=graph.input_dtype)
    assert graph.prepare(ready) is ready  # nothing to convert: no copy
    raw = graph.run_raw(x[:7].tolist())  # lists and other dtypes are converted first
    wrapped = graph.session.run(None, {graph.input_name: ready})
    assert list(raw) == [o.name for o in graph.outputs]
    for got, want in zip(raw.values(), wrapped, strict=True):
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    wrong = np.ones((2, 3), dtype=graph.input_dtype)  # iris has 4 features
    with pytest.raises(Exception, match=r"[Ii]nvalid|dimension") as native:
        graph.run_raw(wrong)
    with pytest.raises(type(native.value)):
        graph.session.run(None, {graph.input_name: wrong})
