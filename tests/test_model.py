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


def test_cheap_engine_calls_run_on_the_event_loop_thread(tmp_path):
    models.write_joblib(models.random_forest(), tmp_path)
    model = loaded(tmp_path, batching=False)
    assert model.costs.inline(("predict",), 1)  # ONNX Runtime: microseconds for one row
    threads = []
    original = model._run_methods

    def recording(methods, x):
        import threading

        threads.append(threading.current_thread().name)
        return original(methods, x)

    model._run_methods = recording
    infer(model, v2(np.zeros((1, 6))))
    assert threads == ["MainThread"]


@pytest.mark.parametrize("idle_wait_us", [0, 750])
def test_the_batcher_gets_the_batching_settings(tmp_path, idle_wait_us):
    models.write_joblib(models.random_forest(), tmp_path)
    model = loaded(tmp_path, max_batch_size=8, max_latency_us=900, idle_wait_us=idle_wait_us)

    async def made():
        return model._get_batcher()

    batcher = asyncio.run(made())
    assert (batcher.max_batch_size, batcher.max_latency_s) == (8, 0.0009)
    assert batcher._idle.limit_s == idle_wait_us / 1e6


@pytest.mark.parametrize("case", ["slow-model", "inline-off"])
def test_slow_calls_and_inline_off_run_in_a_worker_thread(tmp_path, case):
    import threading

    from slow_estimator import SlowRegressor

    if case == "slow-model":
        models.write_joblib(SlowRegressor(predict_seconds=0.05).fit(np.zeros((2, 3))), tmp_path)
        model = loaded(tmp_path, batching=False)
        assert model.costs.costs == {}  # 50 ms a call: never measured further
    else:
        models.write_joblib(models.ridge(), tmp_path)
        model = loaded(tmp_path, batching=False, inline_max_us=0)
    threads = []
    original = model._run_methods

    def recording(methods, x):
        threads.append(threading.current_thread().name)
        return original(methods, x)

    model._run_methods = recording
    infer(model, v2(np.ones((1, 3))))
    assert len(threads) == 1 and threads[0] != "MainThread"


def test_kserve_stage_histograms_count_each_request(tmp_path):
    from kserve.metrics import POST_HIST_TIME, PRE_HIST_TIME, PREDICT_HIST_TIME

    models.write_joblib(models.ridge(), tmp_path)
    model = SklearnModel(Settings(model_dir=tmp_path, model_name="staged", batching=False))
    model.load()

    def observed():
        out = []
        for h in (PRE_HIST_TIME, PREDICT_HIST_TIME, POST_HIST_TIME):
            samples = {
                s.name: s.value
                for s in h.collect()[0].samples
                if s.labels.get("model_name") == "staged"
            }
            out.append(samples.get(f"{h._name}_count", 0.0))
        return out

    before = observed()

    async def run():
        response, headers = await model(v2(np.ones((2, 3))))
        return response, headers

    response, headers = asyncio.run(run())
    assert headers == {}
    assert response.outputs[0].name == "predict" and response.outputs[0].shape == [2]
    assert observed() == [b + 1 for b in before]


def test_no_inline_call_while_a_worker_rebuilds_its_engine(tmp_path):
    models.write_joblib(models.ridge(), tmp_path)
    model = loaded(tmp_path, batching=False)
    assert model.inline(("predict",), 1)
    model.runner = None  # as in a worker process before its engine is rebuilt
    assert not model.inline(("predict",), 1)  # the wait happens in a thread, not the loop
