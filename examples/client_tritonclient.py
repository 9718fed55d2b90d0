"""Call the bundled iris model with tritonclient over HTTP and gRPC (V2).

    python examples/client_tritonclient.py [--rest-url localhost:8080] [--grpc-url localhost:8081]

Start the server first with ``make serve``. tritonclient.grpc and kserve cannot share a
process (both register the ``inference`` protobuf package), so keep them apart.
"""

from __future__ import annotations

import argparse

import numpy as np
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient

ROWS = np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rest-url", default="localhost:8080")
    parser.add_argument("--grpc-url", default="localhost:8081")
    parser.add_argument("--model", default="iris")
    args = parser.parse_args()

    # HTTP, binary tensor data both ways
    http = httpclient.InferenceServerClient(args.rest_url)
    tensor = httpclient.InferInput("input-0", list(ROWS.shape), "FP64")
    tensor.set_data_from_numpy(ROWS, binary_data=True)
    outputs = [
        httpclient.InferRequestedOutput("predict", binary_data=True),
        httpclient.InferRequestedOutput("predict_proba", binary_data=True),
    ]
    result = http.infer(args.model, [tensor], outputs=outputs)
    print("http labels:", [v.decode() for v in result.as_numpy("predict")])
    print("http proba:", result.as_numpy("predict_proba").round(3).tolist())

    # gRPC
    grpc = grpcclient.InferenceServerClient(args.grpc_url)
    tensor = grpcclient.InferInput("input-0", list(ROWS.shape), "FP64")
    tensor.set_data_from_numpy(ROWS)
    result = grpc.infer(args.model, [tensor], outputs=[grpcclient.InferRequestedOutput("predict")])
    print("grpc labels:", [v.decode() for v in result.as_numpy("predict")])


if __name__ == "__main__":
    main()
