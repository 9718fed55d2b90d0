"""V2 over gRPC against the real server: tritonclient gRPC and KServe's gRPC client."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import grpc
import models
import numpy as np
import pytest
from kserve import InferenceGRPCClient, InferInput, InferRequest
from kserve.protocol.infer_type import RequestedOutput

CALL = Path(__file__).with_name("triton_grpc_call.py")
X_IRIS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]


def triton(server, op="infer", **spec):
    """tritonclient.grpc in its own process (its protos clash with kserve's)."""
    spec.update(url=server.grpc, op=op, model=spec.get("model", server.name))
    done = subprocess.run(
        [sys.executable, str(CALL)],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(done.stdout)


def tensor(name, shape, datatype, data):
    return {"name": name, "shape": shape, "datatype": datatype, "data": data}


def test_tritonclient_grpc_string_labels_and_proba(servers):
    answer = triton(
        servers["lr"],
        inputs=[tensor("input-0", [2, 4], "FP64", X_IRIS)],
        outputs=["predict", "predict_proba"],
        request_id="g-1",
    )
    assert answer["ok"], answer
    assert answer["id"] == "g-1" and answer["raw_count"] == 2
    labels = answer["outputs"]["predict"]
    assert labels["data"] == ["setosa", "virginica"] and labels["datatype"] == "BYTES"
    proba = answer["outputs"]["predict_proba"]
    assert proba["shape"] == [2, 3] and proba["numpy_dtype"] == "float64"
    assert proba["parameters"]["classes"] == '["setosa","versicolor","virginica"]'
    expected = models.lr_pipeline().predict_proba(
        models.iris_frame()[0].iloc[:0]._constructor(X_IRIS, columns=models.IRIS_FEATURES)
    )
    np.testing.assert_allclose(np.reshape(proba["data"], (2, 3)), expected, rtol=1e-4, atol=1e-6)


def test_tritonclient_grpc_mixed_named_inputs(servers):
    answer = triton(
        servers["house"],
        inputs=[
            tensor("area", [2], "FP64", [60.0, 150.0]),
            tensor("bedrooms", [2], "INT64", [2, 4]),
            tensor("location", [2], "BYTES", ["south", "north"]),
        ],
    )
    assert answer["ok"], answer
    frame = (
        models.house_frame()[0]
        .iloc[:0]
        ._constructor({"area": [60.0, 150.0], "bedrooms": [2, 4], "location": ["south", "north"]})
    )
    np.testing.assert_allclose(
        answer["outputs"]["predict"]["data"], models.column_pipeline().predict(frame), rtol=1e-6
    )


def test_grpc_metadata_and_readiness(servers):
    health = triton(servers["rf"], op="ready")
    assert health == {"ok": True, "live": True, "ready": True, "model_ready": True}
    meta = triton(servers["rf"], op="metadata")["metadata"]
    assert meta["platform"] == "sklearn" and len(meta["versions"]) == 1
    assert meta["inputs"] == [{"name": "input-0", "datatype": "FP64", "shape": ["-1", "6"]}]
    outputs = {o["name"]: (o["datatype"], o["shape"]) for o in meta["outputs"]}
    assert outputs["predict"] == ("INT64", ["-1"])
    assert outputs["predict_proba"] == ("FP64", ["-1", "3"])


@pytest.mark.parametrize(
    "shape, message",
    [([1, 5], "expected 6 features per row"), ([6], "expected a 2-D tensor")],
)
def test_grpc_bad_input_is_invalid_argument(servers, shape, message):
    data = np.zeros(shape).tolist()
    answer = triton(servers["rf"], inputs=[tensor("input-0", shape, "FP64", data)])
    assert answer["ok"] is False
    assert answer["status"] == "StatusCode.INVALID_ARGUMENT"
    assert message in answer["message"]
    assert triton(servers["rf"], op="ready")["ready"] is True


def test_grpc_unknown_model_is_not_found(servers):
    answer = triton(
        servers["rf"], model="nope", inputs=[tensor("input-0", [1, 6], "FP64", [[0] * 6])]
    )
    assert answer["status"] == "StatusCode.NOT_FOUND" and "nope" in answer["message"]


def test_grpc_unknown_output_lists_valid_ones(servers):
    answer = triton(
        servers["ridge"],
        inputs=[tensor("x", [1, 3], "FP64", [[0, 0, 0]])],
        outputs=["predict_proba"],
    )
    assert answer["status"] == "StatusCode.INVALID_ARGUMENT"
    assert "valid outputs: predict" in answer["message"]


def test_kserve_grpc_client(servers):
    async def call():
        grpc_client = InferenceGRPCClient(servers["lr"].grpc, retries=0)
        tensor = InferInput("input-0", [1, 4], "FP64", data=[5.9, 3.0, 4.2, 1.5])
        request = InferRequest(
            model_name="lr",
            infer_inputs=[tensor],
            request_id="kg-1",
            request_outputs=[RequestedOutput("predict")],
        )
        try:
            return await grpc_client.infer(request)
        finally:
            await grpc_client.close()

    response = asyncio.run(call())
    assert response.id == "kg-1"
    assert [v.decode() if isinstance(v, bytes) else v for v in response.outputs[0].as_numpy()] == [
        "versicolor"
    ]


def test_grpc_contents_input_rather_than_raw(servers):
    """A request with typed `contents` (not raw bytes) is decoded too."""
    from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
    from kserve.protocol.grpc.grpc_predict_v2_pb2_grpc import GRPCInferenceServiceStub

    with grpc.insecure_channel(servers["ridge"].grpc) as channel:
        stub = GRPCInferenceServiceStub(channel)
        request = pb.ModelInferRequest(model_name="ridge")
        tensor = request.inputs.add(name="x", datatype="FP64", shape=[1, 3])
        tensor.contents.fp64_contents.extend([0.5, 0.5, 0.5])
        response = stub.ModelInfer(request)
    value = np.frombuffer(response.raw_output_contents[0], dtype=np.float64)
    np.testing.assert_allclose(value, models.ridge().predict(np.array([[0.5, 0.5, 0.5]])))


def _raw_request(model, *tensors):
    from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb

    request = pb.ModelInferRequest(model_name=model)
    for name, datatype, shape, raw in tensors:
        request.inputs.add(name=name, datatype=datatype, shape=shape)
        if raw is not None:
            request.raw_input_contents.append(raw)
    return request


GRPC_RAW_CASES = [
    ("no-inputs", "rf", [], "request has no inputs"),
    ("unknown-datatype", "rf", [("x", "FLOAT", [1, 6], b"\0" * 48)], "not a V2 datatype"),
    ("raw-too-short", "rf", [("x", "FP64", [1, 6], b"\0" * 40)], "needs 48 bytes"),
    (
        "bytes-prefix-truncated",
        "house",
        [
            ("area", "FP64", [1], np.float64(1).tobytes()),
            ("bedrooms", "INT64", [1], np.int64(1).tobytes()),
            ("location", "BYTES", [1], b"\x09\x00"),
        ],
        "ends inside a length prefix",
    ),
    (
        "bytes-element-past-end",
        "house",
        [
            ("area", "FP64", [1], np.float64(1).tobytes()),
            ("bedrooms", "INT64", [1], np.int64(1).tobytes()),
            ("location", "BYTES", [1], b"\x09\x00\x00\x00abc"),
        ],
        "runs past the binary data",
    ),
    (
        "raw-count-mismatch",
        "rf",
        [("x", "FP64", [1, 6], b"\0" * 48), ("y", "FP64", [1], None)],
        "does not match",
    ),
]


@pytest.mark.parametrize(
    "model, tensors, message",
    [case[1:] for case in GRPC_RAW_CASES],
    ids=[case[0] for case in GRPC_RAW_CASES],
)
def test_grpc_raw_bad_input(servers, model, tensors, message):
    from kserve.protocol.grpc.grpc_predict_v2_pb2_grpc import GRPCInferenceServiceStub

    with grpc.insecure_channel(servers[model].grpc) as channel:
        stub = GRPCInferenceServiceStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            stub.ModelInfer(_raw_request(model, *tensors))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value.details()
    assert message in caught.value.details()
    assert "Traceback" not in caught.value.details()
