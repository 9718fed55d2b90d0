"""Run one tritonclient gRPC call and print what came back as JSON.

tritonclient.grpc and kserve register the same ``inference.*`` protobuf symbols, so they
cannot share a process; the gRPC tests run tritonclient through this script.

stdin: {"url", "op": "infer"|"metadata"|"ready", "model", "inputs": [{name, shape,
datatype, data}], "outputs": [names], "request_id"}
"""

from __future__ import annotations

import json
import sys

import numpy as np
import tritonclient.grpc as triton_grpc
from tritonclient.utils import InferenceServerException

DTYPES = {"FP64": np.float64, "FP32": np.float32, "INT64": np.int64, "BYTES": object}


def _plain(array: np.ndarray) -> list:
    return [v.decode() if isinstance(v, bytes) else v for v in array.reshape(-1).tolist()]


def infer(client: triton_grpc.InferenceServerClient, spec: dict) -> dict:
    tensors = []
    for item in spec["inputs"]:
        tensor = triton_grpc.InferInput(item["name"], item["shape"], item["datatype"])
        data = item["data"]
        if item["datatype"] == "BYTES":
            data = [v.encode() for v in data]
        tensor.set_data_from_numpy(
            np.asarray(data, dtype=DTYPES[item["datatype"]]).reshape(item["shape"])
        )
        tensors.append(tensor)
    outputs = [triton_grpc.InferRequestedOutput(n) for n in spec.get("outputs", [])] or None
    result = client.infer(
        spec["model"], tensors, outputs=outputs, request_id=spec.get("request_id", "")
    )
    response = result.get_response()
    found = {}
    for output in response.outputs:
        array = result.as_numpy(output.name)
        found[output.name] = {
            "datatype": output.datatype,
            "shape": list(array.shape),
            "numpy_dtype": str(array.dtype),
            "data": _plain(array),
            "parameters": {k: v.string_param for k, v in output.parameters.items()},
        }
    return {"id": response.id, "raw_count": len(response.raw_output_contents), "outputs": found}


def main() -> None:
    spec = json.load(sys.stdin)
    client = triton_grpc.InferenceServerClient(spec["url"])
    try:
        if spec["op"] == "infer":
            answer = infer(client, spec)
        elif spec["op"] == "metadata":
            meta = client.get_model_metadata(spec["model"], as_json=True)
            answer = {"metadata": meta}
        else:
            answer = {
                "live": client.is_server_live(),
                "ready": client.is_server_ready(),
                "model_ready": client.is_model_ready(spec["model"]),
            }
        answer["ok"] = True
    except InferenceServerException as err:
        answer = {"ok": False, "status": err.status(), "message": err.message()}
    print(json.dumps(answer))


if __name__ == "__main__":
    main()
