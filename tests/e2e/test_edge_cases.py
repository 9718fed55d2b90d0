"""Edge cases found in review: estimator kinds, odd bodies, limits, the repository API."""

from __future__ import annotations

import concurrent.futures
import json

import grpc
import models
import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.ensemble import RandomForestClassifier
from sklearn.preprocessing import StandardScaler


def row_body(width: int, rows: int = 1, **extra):
    data = np.arange(rows * width, dtype=float).reshape(rows, width).tolist()
    return {
        "inputs": [{"name": "x", "shape": [rows, width], "datatype": "FP64", "data": data}],
        **extra,
    }


@pytest.fixture(scope="module")
def odd_servers(tmp_path_factory, start_server):
    """A scaler alone, a KMeans, a multi-output forest, a forest trained with NaN."""
    root = tmp_path_factory.mktemp("odd")
    x = np.random.default_rng(0).normal(size=(200, 3))
    y2 = np.stack([(x[:, 0] > 0).astype(int), (x[:, 1] > 0).astype(int)], axis=1)
    x_nan = x.copy()
    x_nan[::5, 0] = np.nan
    estimators = {
        "scaler": StandardScaler().fit(x),
        "kmeans": KMeans(n_clusters=3, n_init=2, random_state=0).fit(x),
        "multi": RandomForestClassifier(n_estimators=5, random_state=0).fit(x, y2),
        "nanforest": RandomForestClassifier(n_estimators=5, random_state=0).fit(x_nan, y2[:, 0]),
    }
    running = {
        name: start_server(
            models.write_joblib(est, root / name).parent, name, wait=False, max_latency_us=50000
        )
        for name, est in estimators.items()
    }
    return {name: server.wait_ready() for name, server in running.items()}


def test_transform_only_estimator_defaults_to_transform(odd_servers):
    server = odd_servers["scaler"]
    meta = server.get("/v2/models/scaler").json()
    assert [o["name"] for o in meta["outputs"]] == ["transform"]
    assert meta["parameters"]["default_output"] == "transform"
    out = server.infer(row_body(3)).json()["outputs"][0]
    assert out["name"] == "transform" and out["shape"] == [1, 3]
    v1 = server.post("/v1/models/scaler:predict", json={"instances": [[0.0, 0.0, 0.0]]})
    assert v1.status_code == 200 and len(v1.json()["predictions"][0]) == 3


def test_metadata_datatypes_match_responses(odd_servers):
    server = odd_servers["kmeans"]
    meta = {o["name"]: o for o in server.get("/v2/models/kmeans").json()["outputs"]}
    out = server.infer(row_body(3)).json()["outputs"][0]
    assert out["datatype"] == meta["predict"]["datatype"] == "INT64"
    transformed = server.infer(row_body(3, outputs=[{"name": "transform"}])).json()["outputs"][0]
    assert meta["transform"]["shape"] == [-1, 3] and transformed["shape"] == [1, 3]


def test_multi_output_classifier_rows_first_under_batching(odd_servers):
    server = odd_servers["multi"]
    meta = {o["name"]: o for o in server.get("/v2/models/multi").json()["outputs"]}
    assert meta["predict"]["shape"] == [-1, 2]
    assert meta["predict_proba"]["shape"] == [-1, 2, 2]
    bodies = [row_body(3, rows=1, outputs=[{"name": "predict_proba"}]) for _ in range(6)]
    for i, body in enumerate(bodies):  # distinct rows so a mix-up would show
        body["inputs"][0]["data"] = [[float(i) - 3, 3.0 - i, 0.5]]
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda b: server.infer(b).json(), bodies))
    for body, answer in zip(bodies, answers, strict=True):
        out = answer["outputs"][0]
        assert out["shape"] == [1, 2, 2]
        single = server.infer(body).json()["outputs"][0]  # alone: no batching partner
        assert out["data"] == single["data"]


def test_forest_trained_with_nan_loads_and_takes_nan(odd_servers):
    server = odd_servers["nanforest"]
    body = b'{"inputs":[{"name":"x","shape":[1,3],"datatype":"FP64","data":[NaN,1,2]}]}'
    response = server.post("/v2/models/nanforest/infer", content=body)
    assert response.status_code == 200, response.text


def test_minus_infinity_output_is_null_in_json_exact_in_binary(servers):
    import tritonclient.http as triton_http

    forest = models.random_forest()
    candidates = np.random.default_rng(5).normal(scale=4, size=(200, 6))
    log_proba = forest.predict_log_proba(candidates)
    rows = candidates[np.isneginf(log_proba).any(axis=1)][:1]  # a row with a zero probability
    assert len(rows) == 1
    body = row_body(6, outputs=[{"name": "predict_log_proba"}])
    body["inputs"][0]["data"] = rows.tolist()
    expected = forest.predict_log_proba(rows)
    json_out = servers["rf"].infer(body).json()["outputs"][0]["data"]
    # ONNX Runtime serves this forest: values agree within the engine's parity tolerance
    assert [v is None for v in json_out] == np.isinf(expected.ravel()).tolist()
    finite = [(a, b) for a, b in zip(json_out, expected.ravel(), strict=True) if a is not None]
    np.testing.assert_allclose([a for a, _ in finite], [b for _, b in finite], rtol=1e-5)
    client = triton_http.InferenceServerClient(servers["rf"].url.removeprefix("http://"))
    tensor = triton_http.InferInput("x", [1, 6], "FP64")
    tensor.set_data_from_numpy(rows)
    result = client.infer(
        "rf",
        [tensor],
        outputs=[triton_http.InferRequestedOutput("predict_log_proba", binary_data=True)],
    )
    np.testing.assert_allclose(result.as_numpy("predict_log_proba"), expected, rtol=1e-5)
    assert np.isneginf(result.as_numpy("predict_log_proba")).sum() == np.isneginf(expected).sum()


EDGE_BODIES = [
    (
        "zero-rows",
        {"inputs": [{"name": "x", "shape": [0, 6], "datatype": "FP64", "data": []}]},
        400,
        "has 0 rows",
    ),
    ("deep-nesting", b"[" * 5000 + b"]" * 5000, 400, "not valid JSON"),
    ("deep-nesting-broken", b"[" * 100000, 400, "not valid JSON"),
    ("id-object", {**row_body(6), "id": {"a": 1}}, 400, "'id' must be a string"),
    ("id-huge", {**row_body(6), "id": "x" * 5000}, 400, "'id' is 5000 characters"),
    (
        "name-huge",
        {"inputs": [{"name": "n" * 5000, "shape": [1, 6], "datatype": "FP64", "data": [0] * 6}]},
        400,
        "is 5000 characters; at most 256",
    ),
    (
        "scalar-data",
        {"inputs": [{"name": "x", "shape": [1, 6], "datatype": "FP64", "data": 5}]},
        400,
        "'data' must be a list",
    ),
    (
        "fraction-for-int",
        {
            "inputs": [
                {"name": "x", "shape": [1, 6], "datatype": "INT64", "data": [1.5, 0, 0, 0, 0, 0]}
            ]
        },
        400,
        "whole numbers",
    ),
    (
        "string-number",
        {
            "inputs": [
                {"name": "x", "shape": [1, 6], "datatype": "FP64", "data": ["1.5", 0, 0, 0, 0, 0]}
            ]
        },
        400,
        "'1.5'",
    ),
]


@pytest.mark.parametrize(
    "body, status, fragment", [c[1:] for c in EDGE_BODIES], ids=[c[0] for c in EDGE_BODIES]
)
def test_edge_bodies(servers, body, status, fragment):
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = servers["rf"].post("/v2/models/rf/infer", content=content)
    assert response.status_code == status, response.text
    assert fragment in response.json()["error"]
    assert len(response.text) < 1000  # no client string echoed unbounded
    assert servers["rf"].infer(row_body(6)).status_code == 200


def test_body_over_limit_is_413(tmp_path, start_server):
    models.write_joblib(models.ridge(), tmp_path)
    server = start_server(tmp_path, "small", max_request_bytes=2048)
    big = row_body(3, rows=200)
    response = server.post("/v2/models/small/infer", json=big)
    assert response.status_code == 413 and "--max_request_bytes" in response.json()["error"]
    assert server.infer(row_body(3)).status_code == 200


def test_repository_api_cannot_unload_the_model(servers):
    server = servers["ridge"]
    for action in ("unload", "load"):
        response = server.post(f"/v2/repository/models/ridge/{action}")
        assert response.status_code == 403 and "disabled" in response.json()["error"]
    from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
    from kserve.protocol.grpc.grpc_predict_v2_pb2_grpc import GRPCInferenceServiceStub

    with grpc.insecure_channel(server.grpc) as channel:
        stub = GRPCInferenceServiceStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            stub.RepositoryModelUnload(pb.RepositoryModelUnloadRequest(model_name="ridge"))
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert server.get("/v2/models/ridge/ready").json()["ready"] is True
    assert server.infer(row_body(3)).status_code == 200


def test_large_request_is_served_and_health_stays_fast(servers):
    import threading
    import time

    rows = np.random.default_rng(1).normal(size=(100_000, 6)).round(3)
    body = {
        "inputs": [
            {"name": "x", "shape": list(rows.shape), "datatype": "FP64", "data": rows.tolist()}
        ]
    }
    content = json.dumps(body).encode()
    result = {}
    worker = threading.Thread(
        target=lambda: result.update(r=servers["rf"].post("/v2/models/rf/infer", content=content))
    )
    worker.start()
    slowest = 0.0
    while worker.is_alive():
        started = time.monotonic()
        assert servers["rf"].get("/v2/health/live").status_code == 200
        slowest = max(slowest, time.monotonic() - started)
        time.sleep(0.05)
    worker.join()
    assert result["r"].status_code == 200
    assert result["r"].json()["outputs"][0]["shape"] == [100_000]
    assert slowest < 1.0, f"liveness took {slowest:.2f}s during a large request"
