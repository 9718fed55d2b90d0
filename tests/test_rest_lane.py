"""The REST lane in-process: the same bytes as the general path, or no answer at all."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import models
import numpy as np
import pytest

from predictor import responses, rest_lane, tensors
from predictor.errors import InvalidTensor, PredictorError
from predictor.model import OFFLOAD_VALUES, SklearnModel
from predictor.settings import Settings

ROWS = np.random.default_rng(5).normal(size=(5, 6))


def doc(x: Any = ROWS, datatype: str = "FP64", outputs: Any = None, **top: Any) -> dict:
    x = np.asarray(x)
    tensor = {"name": "input-0", "shape": list(x.shape), "datatype": datatype}
    tensor["data"] = x.ravel().tolist()
    body: dict[str, Any] = {"id": "req-1", "inputs": [tensor], **top}
    if outputs is not None:
        body["outputs"] = outputs
    return body


def encode(body: dict) -> bytes:
    return json.dumps(body).encode()


def lane(model: SklearnModel, body: bytes) -> bytes | None:
    return asyncio.run(rest_lane.answer(model, body))


def general(model: SklearnModel, body: bytes) -> bytes:
    """What the general path answers: KServe's request object through the model's stages."""

    async def run() -> bytes:
        request = tensors.parse_rest_v2(body, None, model.name)
        result, _ = await model(request, headers={})
        payload, json_length = responses.to_rest_v2(result, request)
        assert json_length is None
        return payload

    return asyncio.run(run())


@pytest.mark.parametrize(
    ("datatype", "outputs", "rows"),
    [
        ("FP64", None, 5),
        ("FP32", None, 5),
        ("FP64", [{"name": "predict_proba"}, {"name": "predict"}], 5),
        ("FP64", [{"name": "predict_log_proba"}, {"name": "predict_log_proba"}], 5),
        ("FP64", [], 1),
        ("FP64", None, 700),  # over 4 KB: the data is read by simdjson straight to numpy
    ],
    ids=["fp64", "fp32", "proba-and-labels", "repeated-output", "empty-outputs", "big"],
)
def test_the_lane_answers_as_the_general_path_does(rf, datatype, outputs, rows) -> None:
    x = np.random.default_rng(rows).normal(size=(rows, 6))
    body = encode(doc(x, datatype, outputs))
    answered = lane(rf, body)
    assert answered is not None
    assert answered == general(rf, body)
    reply = json.loads(answered)
    assert reply["id"] == "req-1" and reply["model_version"] == rf.version
    if not outputs or outputs[-1]["name"] == "predict":
        fitted = x.astype(np.float32) if datatype == "FP32" else x
        assert reply["outputs"][-1]["data"] == models.random_forest().predict(fitted).tolist()


def test_ints_in_the_data_and_integer_ids_are_taken(rf) -> None:
    body = encode(doc(np.arange(12).reshape(2, 6), id=7))
    answered = lane(rf, body)
    assert answered is not None and answered == general(rf, body)
    assert json.loads(answered)["id"] == "7"


def test_a_request_without_an_id_gets_a_fresh_one(rf) -> None:
    body = doc()
    del body["id"]
    first, second = lane(rf, encode(body)), lane(rf, encode(body))
    assert first is not None and second is not None
    ids = json.loads(first)["id"], json.loads(second)["id"]
    assert ids[0] and ids[1] and ids[0] != ids[1]
    assert json.loads(first)["outputs"] == json.loads(general(rf, encode(body)))["outputs"]


def _with(change) -> bytes:
    body = doc()
    change(body)
    return encode(body)


def _tensor(body: dict) -> dict:
    return body["inputs"][0]


DECLINED = {
    "two-inputs": lambda b: b["inputs"].append(dict(_tensor(b), name="b")),
    "int64": lambda b: _tensor(b).update(datatype="INT64"),
    "bytes": lambda b: _tensor(b).update(datatype="BYTES"),
    "datatype-list": lambda b: _tensor(b).update(datatype=[]),
    "too-wide": lambda b: _tensor(b).update(shape=[5, 7]),
    "one-d": lambda b: _tensor(b).update(shape=[30]),
    "bool-shape": lambda b: _tensor(b).update(shape=[5, 6.0]),
    "no-rows": lambda b: _tensor(b).update(shape=[0, 6], data=[]),
    "short-data": lambda b: _tensor(b)["data"].pop(),
    "nested-data": lambda b: _tensor(b).update(data=ROWS.tolist()),
    "a-string": lambda b: _tensor(b)["data"].__setitem__(3, "1.5"),
    "a-boolean": lambda b: _tensor(b)["data"].__setitem__(3, True),
    "a-null": lambda b: _tensor(b)["data"].__setitem__(3, None),
    "unknown-output": lambda b: b.update(outputs=[{"name": "transform"}]),
    "binary-output": lambda b: b.update(
        outputs=[{"name": "predict", "parameters": {"binary_data": True}}]
    ),
    "outputs-not-a-list": lambda b: b.update(outputs={"name": "predict"}),
    "request-parameters": lambda b: b.update(parameters={"binary_data_output": True}),
    "parameters-not-an-object": lambda b: b.update(parameters=[]),
    "tensor-parameters": lambda b: _tensor(b).update(parameters={"binary_data_size": 240}),
    "long-name": lambda b: _tensor(b).update(name="n" * 257),
    "empty-name": lambda b: _tensor(b).update(name=""),
    "long-id": lambda b: b.update(id="i" * 257),
    "boolean-id": lambda b: b.update(id=True),
    "unknown-key": lambda b: b.update(extra=1),
}


@pytest.mark.parametrize("change", list(DECLINED.values()), ids=list(DECLINED))
def test_anything_else_is_left_to_the_general_path(rf, change) -> None:
    assert lane(rf, _with(change)) is None


@pytest.mark.parametrize(
    "body", [b"{", b"[]", b'{"inputs": 5}', b'{"inputs": []}'], ids=["bad", "list", "5", "[]"]
)
def test_malformed_bodies_are_left_to_the_general_path(rf, body) -> None:
    assert lane(rf, body) is None
    with pytest.raises(PredictorError):
        general(rf, body)


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_nan_is_left_to_the_general_path_where_the_model_refuses_it(tmp_path, value) -> None:
    models.write_pickle(models.ridge(), tmp_path)  # 3 unnamed features, no NaN support
    model = SklearnModel(Settings(model_dir=tmp_path, model_name="ridge"))
    assert model.load() and not model.schema.allow_nan
    x = np.ones((2, 3))
    assert lane(model, encode(doc(x))) == general(model, encode(doc(x)))
    x[1, 2] = value
    body = encode(doc(x))  # NaN / Infinity literals, as Python's json writes them
    assert lane(model, body) is None
    with pytest.raises(InvalidTensor, match="cannot take NaN or infinity"):
        general(model, body)


def test_more_values_than_are_decoded_on_the_loop_go_the_general_way(rf) -> None:
    rows = OFFLOAD_VALUES // 6 + 1
    assert lane(rf, encode(doc(np.zeros((rows, 6))))) is None
    assert lane(rf, encode(doc(np.zeros((rows - 1, 6))))) is not None


def test_named_features_and_overridden_stages_go_the_general_way(tmp_path: Path) -> None:
    models.write_joblib(models.lr_pipeline(), tmp_path)  # trained on a DataFrame
    named = SklearnModel(Settings(model_dir=tmp_path, model_name="lr"))
    assert named.load()
    assert lane(named, encode(doc(np.ones((2, 4))))) is None

    class Doubling(SklearnModel):
        async def preprocess(self, payload, headers=None):
            prepared = await super().preprocess(payload, headers)
            prepared.x = prepared.x * 2
            return prepared

    models.write_joblib(models.random_forest(), tmp_path / "rf")
    model = Doubling(Settings(model_dir=tmp_path / "rf", model_name="rf"))
    assert model.load()
    assert lane(model, encode(doc())) is None


def test_concurrent_lane_requests_share_engine_calls(rf) -> None:
    async def run() -> list[bytes | None]:
        return await asyncio.gather(
            *(rest_lane.answer(rf, encode(doc(ROWS[i : i + 1]))) for i in range(5))
        )

    calls_before = rf.batcher.batches if rf.batcher is not None else 0
    answers = asyncio.run(run())
    labels = [json.loads(a)["outputs"][0]["data"][0] for a in answers if a is not None]
    assert labels == models.random_forest().predict(ROWS).tolist()
    assert rf.batcher is not None and rf.batcher.batches - calls_before < 5
