"""Prometheus metrics and logs of a real server."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import models

ROW = {"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP64", "data": [1, 2, 3]}]}
CALL = Path(__file__).with_name("triton_grpc_call.py")


def counter(text: str, protocol: str, outcome: str, model: str = "obs") -> float:
    pattern = (
        r"^predictor_requests_total\{"
        rf'(?=[^}}]*model="{model}")(?=[^}}]*protocol="{protocol}")(?=[^}}]*outcome="{outcome}")'
        r"[^}]*\} ([0-9.e+]+)$"
    )
    match = re.search(pattern, text, re.M)
    return float(match.group(1)) if match else 0.0


def test_metrics_count_requests_by_protocol_and_outcome(tmp_path, start_server):
    models.write_joblib(models.ridge(), tmp_path)
    server = start_server(tmp_path, "obs")
    for _ in range(3):
        assert server.infer(ROW).status_code == 200
    assert server.post("/v2/models/obs/infer", content=b"").status_code == 400
    assert server.post("/v1/models/obs:predict", json={"instances": [[1, 2, 3]]}).status_code == 200
    spec = {
        "url": server.grpc,
        "op": "infer",
        "model": "obs",
        "inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP64", "data": [[1, 2, 3]]}],
    }
    subprocess.run(
        [sys.executable, str(CALL)],
        input=json.dumps(spec),
        text=True,
        check=True,
        capture_output=True,
    )
    junk = "no-such-model-7f3a"
    assert server.post(f"/v2/models/{junk}/infer", json=ROW).status_code == 404
    text = server.get("/metrics").text
    assert counter(text, "v2-rest", "client_error", model="unknown") == 1
    assert junk not in text  # a client cannot mint label values with made-up names
    assert counter(text, "v2-rest", "ok") == 3
    assert counter(text, "v2-rest", "client_error") == 1
    assert counter(text, "v1-rest", "ok") == 1
    assert counter(text, "v2-grpc", "ok") == 1
    assert re.search(
        r'^predictor_request_duration_seconds_count\{model="obs",protocol="v2-rest"\} 4\.0$',
        text,
        re.M,
    )
    # KServe's own stage histograms, kept by predictor.stages.StagedModel
    for stage in (
        "request_preprocess_seconds",
        "request_predict_seconds",
        "request_postprocess_seconds",
    ):
        # 3 V2 + 1 V1 over REST and 1 over gRPC reached the model (the empty body did not)
        assert re.search(rf'^{stage}_count\{{model_name="obs"\}} 5\.0$', text, re.M), stage
    assert re.search(r'^predictor_model_info\{.*model="obs".*\} 1\.0$', text, re.M)


def test_no_log_line_per_request_and_one_per_error(tmp_path, start_server):
    models.write_joblib(models.ridge(), tmp_path)
    server = start_server(tmp_path, "quiet")
    before = server.log().splitlines()
    for _ in range(20):
        assert server.infer(ROW).status_code == 200
        assert server.get("/v2/health/ready").status_code == 200
    assert server.log().splitlines() == before  # nothing per request at INFO
    assert server.post("/v2/models/quiet/infer", content=b"{").status_code == 400
    new = [json.loads(line) for line in server.log().splitlines()[len(before) :]]
    assert len(new) == 1
    line = new[0]
    assert line["level"] == "WARNING" and "not valid JSON" in line["msg"]
    assert line["status"] == 400 and line["error"] == "MalformedBody"
    assert line["model"] == "quiet" and line["protocol"] == "v2-rest"
