"""V2 over REST against the real server: tritonclient HTTP, KServe's REST client, raw HTTP."""

from __future__ import annotations

import asyncio
import json

import models
import numpy as np
import pytest
import tritonclient.http as triton_http
from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig
from kserve.protocol.infer_type import RequestedOutput

X_IRIS = np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]])


def triton(server):
    return triton_http.InferenceServerClient(server.url.removeprefix("http://"))


@pytest.mark.parametrize("binary", [True, False])
def test_tritonclient_lr_pipeline_string_classes(servers, binary):
    server = servers["lr"]
    tensor = triton_http.InferInput("input-0", list(X_IRIS.shape), "FP64")
    tensor.set_data_from_numpy(X_IRIS, binary_data=binary)
    outputs = [
        triton_http.InferRequestedOutput("predict", binary_data=binary),
        triton_http.InferRequestedOutput("predict_proba", binary_data=binary),
    ]
    result = triton(server).infer("lr", [tensor], outputs=outputs, request_id="req-7")
    expected = models.lr_pipeline()
    frame = models.iris_frame()[0].iloc[:0]._constructor(X_IRIS, columns=models.IRIS_FEATURES)
    labels = [v.decode() if isinstance(v, bytes) else v for v in result.as_numpy("predict")]
    assert labels == list(expected.predict(frame))
    proba = result.as_numpy("predict_proba")
    assert proba.shape == (3, 3)
    np.testing.assert_allclose(proba, expected.predict_proba(frame), rtol=1e-4, atol=1e-6)
    response = result.get_response()
    assert response["id"] == "req-7"
    proba_out = next(o for o in response["outputs"] if o["name"] == "predict_proba")
    assert proba_out["parameters"]["classes"] == models.IRIS_CLASSES
    assert proba_out["datatype"] == "FP64"
    assert next(o for o in response["outputs"] if o["name"] == "predict")["datatype"] == "BYTES"


def test_tritonclient_random_forest_fp32_int_labels(servers):
    server = servers["rf"]
    rows = np.random.default_rng(0).normal(size=(5, 6)).astype(np.float32)
    tensor = triton_http.InferInput("input-0", [5, 6], "FP32")
    tensor.set_data_from_numpy(rows)
    result = triton(server).infer("rf", [tensor])
    labels = result.as_numpy("predict")
    assert labels.dtype == np.int64
    np.testing.assert_array_equal(labels, models.random_forest().predict(rows))


def test_ridge_pickle_regression_values(servers):
    server = servers["ridge"]
    rows = [[0.1, -0.3, 2.0], [1.0, 1.0, 1.0]]
    response = server.infer(
        {"inputs": [{"name": "x", "shape": [2, 3], "datatype": "FP64", "data": rows}]}
    )
    assert response.status_code == 200, response.text
    out = response.json()["outputs"][0]
    assert out["name"] == "predict" and out["datatype"] == "FP64" and out["shape"] == [2]
    np.testing.assert_allclose(out["data"], models.ridge().predict(np.array(rows)), rtol=1e-6)


@pytest.mark.parametrize("layout", ["flat", "nested", "ragged"])
def test_a_big_json_request_reads_every_number(servers, layout):
    """Big bodies take the simdjson path (flat data straight to numpy); nested data takes
    the general one; both give the numbers as sent, and ragged data is still a 400."""
    rows = np.random.default_rng(3).normal(size=(400, 3)).round(6)
    data = rows.reshape(-1).tolist() if layout == "flat" else rows.tolist()
    if layout == "ragged":
        data[7] = data[7][:2]
    body = {"inputs": [{"name": "x", "shape": [400, 3], "datatype": "FP64", "data": data}]}
    response = servers["ridge"].infer(body)
    if layout == "ragged":
        assert response.status_code == 400, response.text
        assert (
            "input 'x'" in response.json()["error"] and "equal length" in response.json()["error"]
        )
        return
    assert response.status_code == 200, response.text
    out = response.json()["outputs"][0]
    np.testing.assert_allclose(out["data"], models.ridge().predict(rows), rtol=1e-9)


@pytest.mark.parametrize("binary", [True, False])
def test_column_transformer_mixed_named_inputs(servers, binary):
    server = servers["house"]
    area = np.array([55.5, 120.0, 80.25])
    bedrooms = np.array([1, 3, 2], dtype=np.int64)
    location = np.array([b"north", b"west", b"east"], dtype=object)
    tensors = []
    for name, values, datatype in (
        ("area", area, "FP64"),
        ("bedrooms", bedrooms, "INT64"),
        ("location", location, "BYTES"),
    ):
        tensor = triton_http.InferInput(name, [3], datatype)
        tensor.set_data_from_numpy(values, binary_data=binary)
        tensors.append(tensor)
    result = triton(server).infer("house", tensors[::-1])  # any order
    frame = (
        models.house_frame()[0]
        .iloc[:0]
        ._constructor({"area": area, "bedrooms": bedrooms, "location": ["north", "west", "east"]})
    )
    np.testing.assert_allclose(
        result.as_numpy("predict"), models.column_pipeline().predict(frame), rtol=1e-6
    )


@pytest.mark.parametrize("binary", [True, False])
def test_hist_gradient_boosting_skops_with_nan(servers, binary):
    server = servers["hgb"]
    rows = np.array([[0.5, np.nan, -1.0, 2.0], [np.nan, np.nan, np.nan, np.nan]])
    tensor = triton_http.InferInput("input-0", [2, 4], "FP64")
    tensor.set_data_from_numpy(rows, binary_data=binary)
    outputs = [triton_http.InferRequestedOutput("predict_proba", binary_data=binary)]
    result = triton(server).infer("hgb", [tensor], outputs=outputs)
    np.testing.assert_allclose(
        result.as_numpy("predict_proba"),
        models.hist_gradient_boosting().predict_proba(rows),
        rtol=1e-6,
    )


def test_nan_as_json_null_for_hgb(servers):
    body = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [1, None, 2, 3]}]}
    response = servers["hgb"].infer(body)
    assert response.status_code == 200, response.text
    expected = models.hist_gradient_boosting().predict(np.array([[1, np.nan, 2, 3]]))
    assert response.json()["outputs"][0]["data"] == expected.tolist()


def test_kserve_rest_client_v2(servers):
    async def call():
        client = InferenceRESTClient(RESTConfig(protocol="v2", retries=0))
        tensor = InferInput("input-0", [1, 4], "FP64", data=[[5.1, 3.5, 1.4, 0.2]])
        request = InferRequest(
            model_name="lr",
            infer_inputs=[tensor],
            request_id="kserve-1",
            request_outputs=[RequestedOutput("predict"), RequestedOutput("predict_proba")],
        )
        try:
            return await client.infer(servers["lr"].url, request, model_name="lr")
        finally:
            await client.close()

    response = asyncio.run(call())
    assert response.id == "kserve-1"
    assert response.outputs[0].data == ["setosa"]
    assert np.asarray(response.outputs[1].data).shape == (3,) or response.outputs[1].shape == [
        1,
        3,
    ]


def test_response_id_generated_when_missing(servers):
    body = {"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP64", "data": [1, 2, 3]}]}
    first = servers["ridge"].infer(body).json()["id"]
    second = servers["ridge"].infer(body).json()["id"]
    assert first and second and first != second


def test_json_without_content_type_is_read_as_json(servers):
    body = json.dumps(
        {
            "inputs": [
                {"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [5.1, 3.5, 1.4, 0.2]}
            ]
        }
    )
    for headers in ({}, {"content-type": "application/x-www-form-urlencoded"}):
        response = servers["lr"].post("/v2/models/lr/infer", content=body, headers=headers)
        assert response.status_code == 200, response.text
        assert response.json()["outputs"][0]["data"] == ["setosa"]


def test_per_feature_tensors_for_named_numeric_model(servers):
    inputs = [
        {"name": name, "shape": [1], "datatype": "FP32", "data": [value]}
        for name, value in zip(models.IRIS_FEATURES, [6.7, 3.0, 5.2, 2.3], strict=True)
    ]
    response = servers["lr"].infer({"inputs": inputs})
    assert response.status_code == 200, response.text
    assert response.json()["outputs"][0]["data"] == ["virginica"]


def test_several_outputs_in_requested_order(servers):
    body = {
        "inputs": [
            {"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [5.1, 3.5, 1.4, 0.2]}
        ],
        "outputs": [
            {"name": "decision_function"},
            {"name": "predict_log_proba"},
            {"name": "predict"},
        ],
    }
    outputs = servers["lr"].infer(body).json()["outputs"]
    assert [o["name"] for o in outputs] == ["decision_function", "predict_log_proba", "predict"]
    assert outputs[0]["shape"] == [1, 3] and outputs[1]["shape"] == [1, 3]
    assert np.all(np.asarray(outputs[1]["data"]) <= 0)


def test_the_versioned_infer_path_and_its_neighbours(servers):
    """The versioned path is answered like the plain one; paths next to the inference
    routes keep the app's own answers (the lane hands only exact matches to the model)."""
    server = servers["rf"]
    body = {"inputs": [{"name": "x", "shape": [1, 6], "datatype": "FP64", "data": [0.5] * 6}]}
    plain = server.post("/v2/models/rf/infer", json=body)
    versioned = server.post("/v2/models/rf/versions/1/infer", json=body)
    assert plain.status_code == versioned.status_code == 200
    assert versioned.json()["outputs"] == plain.json()["outputs"]
    tensor = triton_http.InferInput("x", [1, 6], "FP64")
    tensor.set_data_from_numpy(np.full((1, 6), 0.5))
    result = triton(server).infer("rf", [tensor], model_version="1")
    assert result.as_numpy("predict").tolist() == plain.json()["outputs"][0]["data"]
    assert server.get("/v2/models/rf/infer").status_code == 405
    assert server.post("/v2/models/rf/infer/", json=body).status_code in (307, 404)
    missing = server.post("/v2/models/nope/versions/1/infer", json=body)
    assert missing.status_code == 404 and "nope" in missing.json()["error"]
