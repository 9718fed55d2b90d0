"""The gRPC lane in-process: the same responses as the general path, or no answer at all."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import models
import numpy as np
import pytest
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.infer_type import InferRequest

from predictor import grpc_lane, responses
from predictor.model import OFFLOAD_VALUES, SklearnModel
from predictor.settings import Settings

ROWS = np.random.default_rng(3).normal(size=(5, 6))


def request(
    x: Any = ROWS, datatype: str = "FP64", raw: bool = False, outputs: tuple = ()
) -> pb.ModelInferRequest:
    x = np.asarray(x)
    message = pb.ModelInferRequest(model_name="rf", id="req-1")
    tensor = message.inputs.add(name="input-0", datatype=datatype, shape=list(x.shape))
    if raw:
        dtype = {"FP64": np.float64, "FP32": np.float32}[datatype]
        message.raw_input_contents.append(x.astype(dtype).tobytes())
    elif datatype == "FP64":
        tensor.contents.fp64_contents.extend(x.ravel().tolist())
    elif datatype == "FP32":
        tensor.contents.fp32_contents.extend(x.ravel().tolist())
    elif datatype == "INT64":
        tensor.contents.int64_contents.extend(x.ravel().astype(np.int64).tolist())
    for name in outputs:
        message.outputs.add(name=name)
    return message


def lane(model: SklearnModel, message: pb.ModelInferRequest) -> pb.ModelInferResponse | None:
    return asyncio.run(grpc_lane.answer(model, message))


def general(model: SklearnModel, message: pb.ModelInferRequest) -> pb.ModelInferResponse:
    """What the general path answers: KServe's request object through the model's stages."""

    async def run() -> pb.ModelInferResponse:
        result, _ = await model(InferRequest.from_grpc(message), headers={})
        return responses.to_grpc(result)

    return asyncio.run(run())


@pytest.mark.parametrize(
    ("datatype", "raw", "outputs"),
    [
        ("FP64", False, ()),
        ("FP64", True, ()),
        ("FP32", False, ()),
        ("FP32", True, ()),
        ("FP64", False, ("predict_proba", "predict")),
        ("FP64", True, ("predict_log_proba", "predict_log_proba")),  # asked twice: once
    ],
    ids=["fp64", "fp64-raw", "fp32", "fp32-raw", "proba-and-labels", "repeated-output"],
)
def test_the_lane_answers_as_the_general_path_does(rf, datatype, raw, outputs) -> None:
    message = request(datatype=datatype, raw=raw, outputs=outputs)
    answered = lane(rf, message)
    assert answered is not None
    assert answered == general(rf, message)
    assert answered.id == "req-1" and answered.model_version == rf.version
    labels = np.frombuffer(answered.raw_output_contents[-1], dtype=np.int64)
    if not outputs or outputs[-1] == "predict":
        x = ROWS.astype(np.float32) if datatype == "FP32" else ROWS
        np.testing.assert_array_equal(labels, models.random_forest().predict(x))


def test_a_request_without_an_id_gets_a_fresh_one(rf) -> None:
    message = request()
    message.id = ""
    first, second = lane(rf, message), lane(rf, message)
    assert first.id and second.id and first.id != second.id
    assert first.outputs == general(rf, message).outputs


def _edit(change) -> pb.ModelInferRequest:
    message = request()
    change(message)
    return message


DECLINED = {
    "two-inputs": lambda m: m.inputs.add(name="b", datatype="FP64", shape=[5, 6]),
    "int64": lambda m: (
        m.inputs[0].ClearField("contents"),
        setattr(m.inputs[0], "datatype", "INT64"),
    ),
    "bytes": lambda m: setattr(m.inputs[0], "datatype", "BYTES"),
    "too-wide": lambda m: m.inputs[0].shape.__setitem__(1, 7),
    "one-d": lambda m: (m.inputs[0].ClearField("shape"), m.inputs[0].shape.append(30)),
    "no-rows": lambda m: (m.inputs[0].shape.__setitem__(0, 0), m.inputs[0].ClearField("contents")),
    "short-data": lambda m: m.inputs[0].contents.fp64_contents.pop(),
    "unknown-output": lambda m: m.outputs.add(name="transform"),
    "output-parameters": lambda m: setattr(
        m.outputs.add(name="predict").parameters["binary_data"], "bool_param", True
    ),
    "request-parameters": lambda m: setattr(m.parameters["x"], "string_param", "on"),
    "tensor-parameters": lambda m: setattr(m.inputs[0].parameters["x"], "string_param", "on"),
    "long-name": lambda m: setattr(m.inputs[0], "name", "n" * 257),
    "raw-and-contents": lambda m: m.raw_input_contents.append(ROWS.tobytes()),
    "raw-short": lambda m: (
        m.inputs[0].ClearField("contents"),
        m.raw_input_contents.append(ROWS.tobytes()[:-8]),
    ),
    "negative-rows": lambda m: (
        m.inputs[0].shape.__setitem__(0, -5),
        m.inputs[0].contents.fp64_contents.__delitem__(slice(None)),
    ),
    "no-rows-raw": lambda m: (
        m.inputs[0].shape.__setitem__(0, 0),
        m.inputs[0].ClearField("contents"),
        m.raw_input_contents.append(b""),
    ),
    "two-raw": lambda m: (
        m.inputs[0].ClearField("contents"),
        m.raw_input_contents.extend([ROWS.tobytes(), ROWS.tobytes()]),
    ),
}


@pytest.mark.parametrize("change", list(DECLINED.values()), ids=list(DECLINED))
def test_anything_else_is_left_to_the_general_path(rf, change) -> None:
    assert lane(rf, _edit(change)) is None


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_nan_is_left_to_the_general_path_where_the_model_refuses_it(tmp_path, value) -> None:
    from predictor.errors import InvalidTensor

    models.write_pickle(models.ridge(), tmp_path)  # 3 unnamed features, no NaN support
    model = SklearnModel(Settings(model_dir=tmp_path, model_name="ridge"))
    assert model.load() and not model.schema.allow_nan
    x = np.ones((2, 3))
    assert lane(model, request(x)) == general(model, request(x))
    x[1, 2] = value
    assert lane(model, request(x)) is None
    with pytest.raises(InvalidTensor, match="cannot take NaN or infinity"):
        general(model, request(x))


def test_nan_goes_through_the_lane_where_the_model_takes_it(rf) -> None:
    x = ROWS.copy()
    x[0, 0] = np.nan  # scikit-learn's forests take missing values
    assert rf.schema.allow_nan
    answered = lane(rf, request(x))
    assert answered is not None and answered == general(rf, request(x))


def test_more_values_than_are_decoded_on_the_loop_go_the_general_way(rf) -> None:
    rows = OFFLOAD_VALUES // 6 + 1
    assert lane(rf, request(np.zeros((rows, 6)))) is None
    assert lane(rf, request(np.zeros((rows - 1, 6)))) is not None


def test_named_features_go_the_general_way(tmp_path: Path) -> None:
    models.write_joblib(models.lr_pipeline(), tmp_path)  # trained on a DataFrame
    model = SklearnModel(Settings(model_dir=tmp_path, model_name="lr"))
    assert model.load()
    message = request(np.ones((2, 4)))
    assert lane(model, message) is None
    assert general(model, message).outputs[0].name == "predict"


def test_a_subclass_with_its_own_stage_goes_the_general_way(tmp_path: Path) -> None:
    class Doubling(SklearnModel):
        async def preprocess(self, payload, headers=None):
            prepared = await super().preprocess(payload, headers)
            prepared.x = prepared.x * 2
            return prepared

    models.write_joblib(models.random_forest(), tmp_path)
    model = Doubling(Settings(model_dir=tmp_path, model_name="rf"))
    assert model.load()
    assert lane(model, request()) is None


def test_a_subclass_with_its_own_call_goes_the_general_way(tmp_path: Path) -> None:
    seen = []

    class Audited(SklearnModel):
        async def __call__(self, body, headers=None, verb=None):  # type: ignore[override]
            seen.append(body)
            return await super().__call__(body, headers)

    models.write_joblib(models.random_forest(), tmp_path)
    model = Audited(Settings(model_dir=tmp_path, model_name="rf"))
    assert model.load()
    assert lane(model, request()) is None


def test_a_stage_replaced_on_the_instance_goes_the_general_way(tmp_path: Path) -> None:
    models.write_joblib(models.random_forest(), tmp_path)
    model = SklearnModel(Settings(model_dir=tmp_path, model_name="rf"))
    assert model.load()
    assert lane(model, request()) is not None
    original = model.preprocess

    async def doubled(payload, headers=None):
        prepared = await original(payload, headers)
        prepared.x = prepared.x * 2
        return prepared

    model.preprocess = doubled  # type: ignore[method-assign]
    assert lane(model, request()) is None


def test_lane_requests_are_timed_into_kserves_stage_histograms(rf) -> None:
    from kserve.metrics import POST_HIST_TIME, PRE_HIST_TIME, PREDICT_HIST_TIME

    def counts() -> list[float]:
        out = []
        for histogram in (PRE_HIST_TIME, PREDICT_HIST_TIME, POST_HIST_TIME):
            samples = histogram.collect()[0].samples
            out.append(
                next(
                    s.value
                    for s in samples
                    if s.name.endswith("_count") and s.labels.get("model_name") == "rf"
                )
            )
        return out

    lane(rf, request())
    before = counts()
    lane(rf, request())
    assert counts() == [b + 1 for b in before]


def test_concurrent_lane_requests_share_engine_calls(rf) -> None:
    async def run() -> list[pb.ModelInferResponse | None]:
        return await asyncio.gather(
            *(grpc_lane.answer(rf, request(ROWS[i : i + 1])) for i in range(5))
        )

    calls_before = rf.batcher.batches if rf.batcher is not None else 0
    answers = asyncio.run(run())
    labels = [int(np.frombuffer(a.raw_output_contents[0], dtype=np.int64)[0]) for a in answers]
    assert labels == models.random_forest().predict(ROWS).tolist()
    assert rf.batcher is not None and rf.batcher.batches - calls_before < 5
