"""The ceiling: this predictor's own server stack answering a constant V2 response.

The same routes, HTTP and gRPC lanes, request decoding, stage timing
(``predictor.stages``), heap settling and gRPC service as ``python -m predictor``, but
the model returns a response built once at start-up: no inference and no output
encoding. Its throughput is the most the stack can give, whatever the model.

A plain request (one FP64/FP32 ``[N, F]`` tensor) is read by the REST and gRPC lanes'
own decoders (``rest_lane._read`` / ``grpc_lane._read``: JSON or protobuf to a numpy
array, with their checks), exactly as for a scikit-learn model with ``F`` unnamed
features, and answered with the prebuilt reply; anything else takes the general path
(KServe's request objects through the stages). ``--features`` (default 20, the bench's
forest) is the ``F`` the decoders expect.

    python bench/ceiling_server.py --model_name NAME --http_port P --grpc_port Q [--features F]
"""

from __future__ import annotations

import sys
import time
from types import SimpleNamespace
from typing import Any

import numpy as np
from kserve import InferOutput, InferRequest, InferResponse

from predictor import grpc_lane, responses, rest_lane
from predictor.stages import StagedModel

FEATURES = 20


class ConstantModel(StagedModel):
    """Answers every request with one prebuilt response, through the predictor's stages."""

    http_lane = True  # as SklearnModel: the same HTTP path (predictor.http_lane)

    def __init__(self, name: str, features: int = FEATURES):
        super().__init__(name)
        # the data stays an ndarray, as this predictor's response encoders expect
        out = InferOutput(
            name="predict", shape=[1], datatype="INT64", data=np.zeros(1, dtype=np.int64)
        )
        self.response = InferResponse(model_name=name, infer_outputs=[out], response_id="c")
        self.rest_reply = responses.to_rest_v2(self.response, None)[0]
        self.grpc_reply = responses.to_grpc(self.response)
        # what the lanes' decoders look at: F unnamed numeric features, NaN allowed
        self.schema = SimpleNamespace(
            feature_names=None,
            n_features=features,
            tensor_datatype="FP64",
            allow_nan=True,
            methods=("predict",),
        )
        self.default_output = "predict"
        self.ready = True

    def load(self) -> bool:
        self.ready = True
        return True

    async def preprocess(self, payload, headers=None):
        return payload

    async def predict(self, payload, headers=None, response_headers=None):
        if isinstance(payload, InferRequest):
            return self.response
        return {"predictions": [0]}

    async def postprocess(self, result, headers=None, response_headers=None):
        return result

    def metadata(self) -> dict:
        return {
            "name": self.name,
            "versions": [],
            "platform": "constant",
            "inputs": [],
            "outputs": [],
        }


def _timed(model: ConstantModel, decode: Any, request: Any, reply: Any) -> Any:
    """Decode ``request`` as the lane would; the constant ``reply`` if it takes it, else
    None (the general path answers). Stages timed as the lanes time them."""
    clock = time.perf_counter
    start = clock()
    if decode(model, request) is None:
        return None
    pre, predict, post = model._stage_timers or model._timers()
    mid = clock()
    pre.observe(mid - start)
    predict.observe(0.0)
    post.observe(clock() - mid)
    return reply


def _read_rest(model: ConstantModel, body: bytes) -> Any:
    return rest_lane._read(model, rest_lane._parse(body), body)


def install_lanes() -> None:
    """Constant models go through the REST and gRPC lanes' decoders; others unchanged."""
    rest_answer, grpc_answer = rest_lane.answer, grpc_lane.answer

    async def rest(model: Any, body: bytes) -> bytes | None:
        if isinstance(model, ConstantModel):
            return _timed(model, _read_rest, body, model.rest_reply)  # type: ignore[no-any-return]
        return await rest_answer(model, body)

    async def grpc(model: Any, request: Any) -> Any:
        if isinstance(model, ConstantModel):
            return _timed(model, grpc_lane._read, request, model.grpc_reply)
        return await grpc_answer(model, request)

    rest_lane.answer = rest  # type: ignore[assignment]
    grpc_lane.answer = grpc  # type: ignore[assignment]


def main() -> None:
    from predictor import logs
    from predictor.settings import load_settings

    argv = sys.argv[1:]
    features = FEATURES
    if "--features" in argv:
        at = argv.index("--features")
        features = int(argv[at + 1])
        del argv[at : at + 2]
    settings, _ = load_settings([*argv, "--model_dir", "/nonexistent"])
    log_file = logs.configure("WARNING", settings.log_format)
    from predictor.server import PredictorServer

    install_lanes()
    PredictorServer(settings, log_file).start([ConstantModel(settings.model_name, features)])


if __name__ == "__main__":
    main()
