"""The ceiling: this predictor's own server stack answering a constant V2 response.

The same routes, request parsing, stage timing (``predictor.stages``), heap settling and
gRPC service as ``python -m predictor``, but the model returns a response built once at
start-up: no input decoding and no inference. Its throughput is the most the stack can
give, whatever the model.

    python bench/ceiling_server.py --model_name NAME --http_port P --grpc_port Q
"""

from __future__ import annotations

import sys

import numpy as np
from kserve import InferOutput, InferRequest, InferResponse

from predictor.stages import StagedModel


class ConstantModel(StagedModel):
    """Answers every request with one prebuilt response, through the predictor's stages."""

    http_lane = True  # as SklearnModel: the same HTTP path (predictor.http_lane)

    def __init__(self, name: str):
        super().__init__(name)
        # the data stays an ndarray, as this predictor's response encoders expect
        out = InferOutput(
            name="predict", shape=[1], datatype="INT64", data=np.zeros(1, dtype=np.int64)
        )
        self.response = InferResponse(model_name=name, infer_outputs=[out], response_id="c")
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


def main() -> None:
    from predictor import logs
    from predictor.settings import load_settings

    settings, _ = load_settings([*sys.argv[1:], "--model_dir", "/nonexistent"])
    log_file = logs.configure("WARNING", settings.log_format)
    from predictor.server import PredictorServer

    PredictorServer(settings, log_file).start([ConstantModel(settings.model_name)])


if __name__ == "__main__":
    main()
