"""Prometheus metrics, served on KServe's ``/metrics`` (the default registry).

``predictor_requests_total{model, protocol, outcome}`` counts inference requests;
``predictor_request_duration_seconds{model, protocol}`` times them end to end. KServe's own
``request_preprocess_seconds`` / ``request_predict_seconds`` / ``request_postprocess_seconds``
histograms are kept by ``predictor.stages.StagedModel``. Labels never carry request
contents, and a request for an unknown model counts as ``model="unknown"``.
"""

from __future__ import annotations

import functools
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

V1_REST, V2_REST, V2_GRPC = "v1-rest", "v2-rest", "v2-grpc"
OK, CLIENT_ERROR, SERVER_ERROR = "ok", "client_error", "server_error"
UNKNOWN_MODEL = "unknown"

REQUESTS = Counter(
    "predictor_requests",
    "Inference requests by model, protocol and outcome.",
    ["model", "protocol", "outcome"],
)
LATENCY = Histogram(
    "predictor_request_duration_seconds",
    "Inference request latency, from body received to response built.",
    ["model", "protocol"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
BATCH_ROWS = Histogram(
    "predictor_batch_rows",
    "Rows per engine call (after adaptive batching).",
    ["model"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 1024, 4096),
)
MODEL_INFO = Gauge(
    "predictor_model_info",
    "1 for the loaded model, with its version, format and serving engine.",
    ["model", "version", "format", "engine", "sklearn_version"],
)


def outcome_of(status: int) -> str:
    if status < 400:
        return OK
    return CLIENT_ERROR if status < 500 else SERVER_ERROR


@functools.cache
def _children(model: str, protocol: str, outcome: str) -> tuple[Any, Any]:
    # labels() hashes and locks on every call; the children never change, so look up once
    return REQUESTS.labels(model, protocol, outcome), LATENCY.labels(model, protocol)


def observe(model: str, protocol: str, status: int, seconds: float) -> None:
    """Count and time one inference request (a 404's model name is not a label value)."""
    if status == 404:  # names from unknown paths would let clients mint label values
        model = UNKNOWN_MODEL
    count, latency = _children(model, protocol, outcome_of(status))
    count.inc()
    latency.observe(seconds)


@functools.cache
def batch_rows(model: str) -> Any:
    """The ``predictor_batch_rows`` child of a model."""
    return BATCH_ROWS.labels(model)
