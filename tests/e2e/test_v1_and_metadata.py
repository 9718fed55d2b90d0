"""V1 predict, V2 model metadata and health endpoints against the real server."""

from __future__ import annotations

import asyncio

import models
import numpy as np
from kserve import InferenceRESTClient, RESTConfig


def test_v1_rows_for_named_model(servers):
    response = servers["lr"].post(
        "/v1/models/lr:predict", json={"instances": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": ["setosa", "virginica"]}


def test_v1_records_keyed_by_feature(servers):
    rows = [
        {"location": "north", "area": 90.5, "bedrooms": 2},
        {"bedrooms": 4, "area": 180.0, "location": "west"},
    ]
    response = servers["house"].post("/v1/models/house:predict", json={"instances": rows})
    assert response.status_code == 200, response.text
    frame = models.house_frame()[0].iloc[:0]._constructor(rows)[models.HOUSE_FEATURES]
    expected = models.column_pipeline().predict(frame)
    np.testing.assert_allclose(response.json()["predictions"], expected, rtol=1e-6)


def test_v1_rows_for_mixed_model_keep_column_types(servers):
    response = servers["house"].post(
        "/v1/models/house:predict", json={"inputs": [[90.5, 2, "north"]]}
    )
    assert response.status_code == 200, response.text
    assert len(response.json()["predictions"]) == 1


def test_v1_predict_proba_by_parameter(servers):
    body = {"instances": [[5.1, 3.5, 1.4, 0.2]], "parameters": {"method": "predict_proba"}}
    response = servers["lr"].post("/v1/models/lr:predict", json=body)
    assert response.status_code == 200, response.text
    proba = response.json()["predictions"]
    assert len(proba) == 1 and len(proba[0]) == 3 and abs(sum(proba[0]) - 1) < 1e-9
    assert proba[0][0] > 0.9


def test_v1_kserve_rest_client(servers):
    async def call():
        client = InferenceRESTClient(RESTConfig(protocol="v1", retries=0))
        try:
            return await client.infer(
                servers["rf"].url, {"instances": [[0.0] * 6]}, model_name="rf"
            )
        finally:
            await client.close()

    answer = asyncio.run(call())
    assert answer["predictions"] == models.random_forest().predict(np.zeros((1, 6))).tolist()


def test_v2_metadata_derived_from_estimator(servers):
    meta = servers["house"].get("/v2/models/house").json()
    assert meta["name"] == "house" and meta["platform"] == "sklearn"
    assert len(meta["versions"]) == 1 and len(meta["versions"][0]) == 12
    # mixed numeric / string columns: per-feature tensors only, dtypes from sample.csv
    assert meta["inputs"] == [
        {"name": "area", "datatype": "FP64", "shape": [-1]},
        {"name": "bedrooms", "datatype": "INT64", "shape": [-1]},
        {"name": "location", "datatype": "BYTES", "shape": [-1]},
    ]
    assert meta["outputs"] == [{"name": "predict", "datatype": "FP64", "shape": [-1]}]
    assert meta["parameters"]["estimator"] == "Pipeline"
    assert meta["parameters"]["feature_names"] == models.HOUSE_FEATURES


def test_v2_metadata_classifier_with_names(servers):
    meta = servers["lr"].get("/v2/models/lr").json()
    assert meta["inputs"][0] == {"name": "input-0", "datatype": "FP64", "shape": [-1, 4]}
    assert [i["name"] for i in meta["inputs"][1:]] == models.IRIS_FEATURES
    outputs = {o["name"]: o for o in meta["outputs"]}
    assert outputs["predict"]["datatype"] == "BYTES"
    assert outputs["predict_proba"]["shape"] == [-1, 3]
    assert meta["parameters"]["classes"] == models.IRIS_CLASSES
    assert meta["parameters"]["format"] == "joblib"
    assert meta["parameters"]["estimator_type"] == "classifier"


def test_v2_metadata_skops_and_pickle_formats(servers):
    assert servers["hgb"].get("/v2/models/hgb").json()["parameters"]["format"] == "skops"
    assert servers["ridge"].get("/v2/models/ridge").json()["parameters"]["format"] == "pickle"


def test_health_and_model_ready(servers):
    server = servers["rf"]
    assert server.get("/v2/health/live").json() == {"live": True}
    assert server.get("/v2/health/ready").json() == {"ready": True}
    assert server.get("/v2/models/rf/ready").json() == {"name": "rf", "ready": True}
    missing = server.get("/v2/models/nope/ready")
    assert missing.status_code == 404 and "nope" in missing.json()["error"]
    assert server.get("/v2/models/nope").status_code == 404


def test_metadata_and_the_log_say_which_engine_serves_each_output(servers):
    """The forest converts (ONNX Runtime for every output); the ColumnTransformer model
    with categories stays on scikit-learn, and the log line says why."""
    rf = servers["rf"].get("/v2/models/rf").json()["parameters"]["engine"]
    assert rf == "predict=onnx,predict_proba=onnx,predict_log_proba=onnx"
    assert "engine: predict=onnx, predict_proba=onnx, predict_log_proba=onnx" in servers["rf"].log()
    house = servers["house"].get("/v2/models/house").json()["parameters"]["engine"]
    assert house == "predict=sklearn"
    assert "engine: predict=sklearn (" in servers["house"].log()
