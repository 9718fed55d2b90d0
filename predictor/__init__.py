"""sklearn-predictor: serve scikit-learn models on KServe's ModelServer (V1/V2, REST/gRPC)."""

__version__ = "0.1.0"
