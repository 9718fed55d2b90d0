"""SklearnModel in-process: load, method resolution, engine calls, errors, pickling."""

from __future__ import annotations

import asyncio
import pickle

import models
import numpy as np
import pytest
from kserve.protocol.infer_type import InferInput, InferRequest, RequestedOutput
from sklearn.preprocessing import StandardScaler

from predictor.errors import ModelLoadError, ModelRejectedInput, UnknownOutput
from predictor.model import SklearnModel
from predictor.settings import Settings


def loaded(directory, **options) -> SklearnModel:
    model = SklearnModel(Settings(model_dir=directory, model_name="m", **options))
    assert model.load() is True and model.ready
    return model


def v2(x: np.ndarray, *outputs: str) -> InferRequest:
    tensor = InferInput("x", list(x.shape), "FP64", data=x.tolist())
    wanted = [RequestedOutput(o) for o in outputs] or None
    return InferRequest(model_name="m", infer_inputs=[tensor], request_outputs=wanted)


def infer(model: SklearnModel, request):
    async def run():
        prepared = await model.preprocess(request)
        return await model.postprocess(await model.predict(prepared))

    return asyncio.run(run())


def test_several_outputs_share_one_engine_call(tmp_path):
    models.write_joblib(models.random_forest(), tmp_path)
    model = loaded(tmp_path, batching=False)
    calls = []
    original = model.runner.run_many

    def counting(methods, x):
        calls.append(tuple(methods))
        return original(methods, x)

    model.runner.run_many = counting
    x = np.zeros((2, 6))
    response = infer(model, v2(x, "predict", "predict_proba"))
    assert calls == [("predict", "predict_proba")]
    assert [o.name for o in response.outputs] == ["predict", "predict_proba"]
    np.testing.assert_array_equal(response.outputs[0]._data, models.random_forest().predict(x))


def test_transform_only_model_defaults_to_transform(tmp_path):
    models.write_joblib(StandardScaler().fit(np.eye(3)), tmp_path)
    model = loaded(tmp_path, batching=False)
    assert (model.default_output, model.v1_output) == ("transform", "transform")
    assert infer(model, v2(np.ones((1, 3)))).outputs[0].name == "transform"


def test_explicit_output_the_model_lacks_fails_load(tmp_path):
    models.write_joblib(models.ridge(), tmp_path)
    model = SklearnModel(Settings(model_dir=tmp_path, default_output="predict_proba"))
    with pytest.raises(ModelLoadError, match="--default_output is 'predict_proba'"):
        model.load()
    assert not model.ready


def test_unknown_output_lists_valid_ones(tmp_path):
    models.write_joblib(models.ridge(), tmp_path)
    model = loaded(tmp_path, batching=False)
    with pytest.raises(UnknownOutput, match=r"valid outputs: predict$"):
        infer(model, v2(np.zeros((1, 3)), "decision_function"))


def test_estimator_value_error_is_a_client_error(tmp_path):
    models.write_house(tmp_path)
    model = loaded(tmp_path, batching=False)
    frame = models.house_frame(rows=1)[0].assign(location="mars")
    with pytest.raises(ModelRejectedInput, match="mars"):
        model._run_methods(("predict",), frame)


def test_pickles_without_engine_and_rebuilds_it(tmp_path):
    models.write_joblib(models.lr_pipeline(), tmp_path)
    model = loaded(tmp_path, batching=False)
    state = model.__getstate__()
    assert state["runner"] is None and state["_lock"] is None
    clone = pickle.loads(pickle.dumps(model))
    assert clone._runner_built.wait(timeout=120)
    result = clone._run_methods(("predict",), models.iris_frame()[0].iloc[:1])
    assert result["predict"].tolist() == ["setosa"]
