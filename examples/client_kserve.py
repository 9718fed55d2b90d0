"""Call the bundled iris model with KServe's own clients (REST V2 and gRPC V2).

python examples/client_kserve.py [--rest-url http://localhost:8080] [--grpc-url localhost:8081]
"""

from __future__ import annotations

import argparse
import asyncio

from kserve import InferenceGRPCClient, InferenceRESTClient, InferInput, InferRequest, RESTConfig
from kserve.protocol.infer_type import RequestedOutput


def request(model: str) -> InferRequest:
    tensor = InferInput("input-0", [1, 4], "FP64", data=[6.7, 3.0, 5.2, 2.3])
    return InferRequest(
        model_name=model,
        infer_inputs=[tensor],
        request_id="example-1",
        request_outputs=[RequestedOutput("predict"), RequestedOutput("predict_proba")],
    )


async def run(http: str, grpc: str, model: str) -> None:
    rest = InferenceRESTClient(RESTConfig(protocol="v2", retries=0))
    try:
        response = await rest.infer(http, request(model), model_name=model)
        print("rest:", response.id, response.outputs[0].data, response.outputs[1].data)
    finally:
        await rest.close()
    client = InferenceGRPCClient(grpc, retries=0)
    try:
        response = await client.infer(request(model))
        print("grpc:", response.id, [v.decode() for v in response.outputs[0].as_numpy()])
    finally:
        await client.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rest-url", default="http://localhost:8080")
    parser.add_argument("--grpc-url", default="localhost:8081")
    parser.add_argument("--model", default="iris")
    args = parser.parse_args()
    asyncio.run(run(args.rest_url, args.grpc_url, args.model))


if __name__ == "__main__":
    main()
