"""The baseline: the minimal custom predictor from KServe's documentation.

A ``kserve.Model`` whose ``predict`` calls the joblib model on the first input and answers
with one output, served by KServe's stock ``ModelServer`` (V1 and V2 REST, V2 gRPC). Nothing
here is tuned: it is what a user gets by following the docs.

    python bench/baseline_predictor.py --model_dir DIR --model_name NAME \
        --http_port P --grpc_port Q
"""

from __future__ import annotations

import argparse
import pathlib

import joblib
from kserve import InferOutput, InferResponse, Model, ModelServer, model_server
from kserve.utils.utils import generate_uuid


class SklearnBaseline(Model):
    def __init__(self, name: str, model_dir: str):
        super().__init__(name)
        self.model_dir = model_dir
        self.model = None
        self.load()

    def load(self) -> bool:
        path = next(pathlib.Path(self.model_dir).glob("*.joblib"))
        self.model = joblib.load(path)
        self.ready = True
        return self.ready

    def predict(self, payload, headers=None, response_headers=None):
        if isinstance(payload, dict):  # V1: {"instances": [...]}
            return {"predictions": self.model.predict(payload["instances"]).tolist()}
        x = payload.inputs[0].as_numpy()
        result = self.model.predict(x)
        out = InferOutput(name="output-0", shape=list(result.shape), datatype="INT64")
        out.set_data_from_numpy(result.astype("int64"), binary_data=False)
        return InferResponse(model_name=self.name, infer_outputs=[out], response_id=generate_uuid())


parser = argparse.ArgumentParser(parents=[model_server.parser])
parser.add_argument("--model_dir", required=True)

if __name__ == "__main__":
    args, _ = parser.parse_known_args()
    model = SklearnBaseline(args.model_name, args.model_dir)
    ModelServer().start([model])
