"""Start-up, readiness, load failures and a busy event loop, against real server processes."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import models
import pytest
from slow_estimator import SlowRegressor

TESTS = str(Path(__file__).resolve().parents[1])
SLOW_ENV = {"PYTHONPATH": TESTS}
ROW = {"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP64", "data": [1.5, 2.0]}]}


def slow_model(directory: Path, load_seconds: float, predict_seconds: float) -> Path:
    estimator = SlowRegressor(load_seconds, predict_seconds).fit([[0.0, 0.0]])
    return models.write_pickle(estimator, directory)


def test_not_ready_until_loaded_but_live(tmp_path, start_server):
    slow_model(tmp_path, load_seconds=6, predict_seconds=0)
    server = start_server(tmp_path, "slow", wait=False, extra_env=SLOW_ENV)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # wait for the port, not for readiness
        try:
            live = server.get("/v2/health/live")
            break
        except httpx.HTTPError:
            time.sleep(0.1)
    assert live.status_code == 200 and live.json() == {"live": True}
    ready = server.get("/v2/health/ready")
    assert ready.status_code == 503 and ready.json() == {"ready": False}
    model_ready = server.get("/v2/models/slow/ready")
    assert model_ready.status_code == 503 and model_ready.json() == {"name": "slow", "ready": False}
    infer = server.infer(ROW)
    assert infer.status_code == 503 and "still loading" in infer.json()["error"]
    server.wait_ready()
    assert server.get("/v2/models/slow/ready").json() == {"name": "slow", "ready": True}
    assert server.infer(ROW).json()["outputs"][0]["data"] == [3.5]


def test_health_and_metadata_answer_while_a_slow_model_predicts(tmp_path, start_server):
    slow_model(tmp_path, load_seconds=0, predict_seconds=3)
    server = start_server(tmp_path, "busy", extra_env=SLOW_ENV, batching="false")
    result = {}
    worker = threading.Thread(target=lambda: result.update(r=server.infer(ROW)))
    worker.start()
    time.sleep(0.5)  # the prediction is now running
    started = time.monotonic()
    assert server.get("/v2/health/ready").status_code == 200
    assert server.get("/v2/models/busy").json()["name"] == "busy"
    answered_in = time.monotonic() - started
    worker.join()
    assert answered_in < 1.5, f"health/metadata waited {answered_in:.2f}s behind predict"
    assert result["r"].status_code == 200


def test_single_file_path_and_pinned_digest(tmp_path, start_server):
    path = models.write_joblib(models.ridge(), tmp_path)
    digest = models.write_digest(path).read_text().split()[0]
    server = start_server(path, "pinned", model_sha256=digest)
    meta = server.get("/v2/models/pinned").json()
    assert meta["versions"] == [digest[:12]]


def test_saved_version_mismatch_is_exposed_and_warned(tmp_path, start_server):
    path = models.write_pickle(models.ridge(), tmp_path)
    import sklearn

    running = sklearn.__version__.encode()
    fake = b"0.0.0"[: len(running)].ljust(len(running), b"0")
    path.write_bytes(path.read_bytes().replace(running, fake))
    server = start_server(tmp_path, "old")
    assert server.get("/v2/models/old").json()["parameters"]["saved_sklearn_version"] == (
        fake.decode()
    )
    warnings = [json.loads(line) for line in server.log().splitlines() if '"WARNING"' in line]
    assert any("model was saved with scikit-learn " + fake.decode() in w["msg"] for w in warnings)


def _two_artifacts(directory: Path) -> None:
    models.write_joblib(models.ridge(), directory)
    models.write_pickle(models.ridge(), directory)


def _tampered(directory: Path) -> None:
    path = models.write_joblib(models.ridge(), directory)
    models.write_digest(path)
    path.write_bytes(path.read_bytes() + b"\0")


def _corrupt(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "model.joblib").write_bytes(b"not a pickle at all")


def _untrusted_skops(directory: Path) -> None:
    models.write_skops(models.hist_gradient_boosting(), directory)


LOAD_FAILURES = [
    (
        "empty-dir",
        lambda d: d.mkdir(parents=True, exist_ok=True),
        {},
        ["no model artifact", "found: nothing"],
    ),
    ("two-artifacts", _two_artifacts, {}, ["found 2 model artifacts", "model.joblib, model.pkl"]),
    (
        "tampered-with-sha256-file",
        _tampered,
        {},
        ["sha256 of", "model.joblib.sha256 pins", "tampered"],
    ),
    (
        "wrong-pinned-digest",
        lambda d: models.write_joblib(models.ridge(), d),
        {"model_sha256": "0" * 64},
        ["--model_sha256 pins 000000"],
    ),
    ("corrupt-file", _corrupt, {}, ["could not load", "model.joblib"]),
    (
        "untrusted-skops-types",
        _untrusted_skops,
        {},
        ["outside skops' trusted set", "TreePredictor", "--trusted_types"],
    ),
    (
        "default-output-not-offered",
        lambda d: models.write_joblib(models.ridge(), d),
        {"default_output": "predict_proba"},
        ["--default_output is 'predict_proba'", "only: predict"],
    ),
]


@pytest.mark.parametrize(
    "prepare, options, fragments",
    [case[1:] for case in LOAD_FAILURES],
    ids=[case[0] for case in LOAD_FAILURES],
)
def test_load_failure_exits_nonzero_with_clear_error(
    tmp_path, start_server, prepare, options, fragments
):
    directory = tmp_path / "model"
    prepare(directory)
    server = start_server(directory, "broken", wait=False, **options)
    assert server.wait_exit(timeout=120) == 1
    errors = [json.loads(line) for line in server.log().splitlines() if '"ERROR"' in line]
    assert len(errors) == 1, server.log()
    assert errors[0]["msg"].startswith("model failed to load: ")
    for fragment in fragments:
        assert fragment in errors[0]["msg"], (fragment, errors[0]["msg"])


def test_bad_setting_fails_fast(tmp_path, start_server):
    models.write_joblib(models.ridge(), tmp_path)
    server = start_server(tmp_path, "cfg", wait=False, engine="fastest")
    assert server.wait_exit(timeout=60) != 0
    assert "engine" in server.log() and "fastest" in server.log()


def test_two_rest_workers_serve_with_the_same_logging(tmp_path, start_server):
    models.write_joblib(models.lr_pipeline(), tmp_path)
    server = start_server(tmp_path, "multi", workers=2)
    body = {"instances": [[5.1, 3.5, 1.4, 0.2]]}
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # workers rebuild their engine in the background
        response = server.post("/v1/models/multi:predict", json=body)
        assert response.status_code == 200, response.text
        assert response.json() == {"predictions": ["setosa"]}
        if server.log().count("Started server process") >= 2:
            break
        time.sleep(0.5)
    lines = server.log().splitlines()
    assert sum("Started server process" in line for line in lines) == 2
    assert all(line.startswith("{") for line in lines), "a worker logged in another format"
    assert not any("REST worker" in line for line in lines), "a worker was restarted"


def test_console_script_help_names_every_env_var():
    script = Path(sys.executable).with_name("predictor")
    done = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    for env in ("PREDICTOR_MODEL_DIR", "PREDICTOR_ENGINE", "PREDICTOR_MAX_LATENCY_US"):
        assert env in done.stdout


def test_kserve_flags_pass_through(tmp_path, start_server):
    models.write_joblib(models.ridge(), tmp_path)
    server = start_server(tmp_path, "docs", extra_args=["--enable_docs_url", "true"])
    assert server.get("/docs").status_code == 200
    assert "--enable_docs_url" in server.log()  # logged as passed through to KServe


def test_sigterm_during_a_long_load_stops_promptly(tmp_path, start_server):
    slow_model(tmp_path, load_seconds=60, predict_seconds=0)
    server = start_server(tmp_path, "stopme", wait=False, extra_env=SLOW_ENV)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if server.get("/v2/health/live").status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    time.sleep(1)  # the load is now sleeping in its thread
    started = time.monotonic()
    server.process.terminate()
    code = server.wait_exit(timeout=30)
    assert time.monotonic() - started < 10, "SIGTERM waited for the model load"
    assert code == 0


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_event_loop_choice_serves_rest_and_grpc(tmp_path, start_server, loop):
    models.write_joblib(models.ridge(), tmp_path)
    server = start_server(tmp_path, f"loop-{loop}", event_loop=loop, max_asyncio_workers=3)
    body = {"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP64", "data": [1, 2, 3]}]}
    rest = server.infer(body)
    assert rest.status_code == 200, rest.text
    spec = {"url": server.grpc, "op": "infer", "model": f"loop-{loop}", "inputs": body["inputs"]}
    done = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("triton_grpc_call.py"))],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    grpc_out = json.loads(done.stdout)["outputs"]["predict"]["data"]
    assert grpc_out == pytest.approx(rest.json()["outputs"][0]["data"])
    # the loop that serves is the one chosen, and --max_asyncio_workers reaches it
    assert f"serving on the {loop} event loop, 3 worker threads" in server.log()


def _batch_rows(server) -> tuple[float, float]:
    """``predictor_batch_rows`` (engine calls, rows in them) from the server's metrics."""
    count = total = 0.0
    for line in server.get("/metrics").text.splitlines():
        if line.startswith("predictor_batch_rows_count"):
            count = float(line.split()[-1])
        elif line.startswith("predictor_batch_rows_sum"):
            total = float(line.split()[-1])
    return count, total


def test_concurrent_requests_merge_over_v1_v2_rest_and_grpc(tmp_path, start_server):
    """While one slow engine call runs in a worker thread, the requests that arrive queue
    and then run as one call, whatever protocol brought them; each gets its own rows."""
    import asyncio

    from kserve import InferenceGRPCClient, InferInput, InferRequest

    slow_model(tmp_path, load_seconds=0, predict_seconds=0.4)
    server = start_server(tmp_path, "merge", extra_env=SLOW_ENV)  # batching on: the default
    rows = [[float(i), 0.5] for i in range(6)]

    def v2(row):
        body = {"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP64", "data": row}]}
        return server.infer(body).json()["outputs"][0]["data"][0]

    def v1(row):
        return server.post("/v1/models/merge:predict", json={"instances": [row]}).json()

    def grpc_all():
        async def call():
            client = InferenceGRPCClient(server.grpc, retries=0)
            try:
                requests = [
                    InferRequest(
                        model_name="merge",
                        infer_inputs=[InferInput("x", [1, 2], "FP64", data=row)],
                    )
                    for row in rows
                ]
                answers = await asyncio.gather(*(client.infer(r) for r in requests))
                return [float(a.outputs[0].as_numpy()[0]) for a in answers]
            finally:
                await client.close()

        return asyncio.run(call())

    def threaded(call):
        results = [None] * len(rows)

        def one(i):
            results[i] = call(rows[i])

        threads = [threading.Thread(target=one, args=(i,)) for i in range(len(rows))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return results

    expected = [sum(row) for row in rows]
    for name, burst in [
        ("v2-rest", lambda: threaded(v2)),
        ("v1-rest", lambda: [r["predictions"][0] for r in threaded(v1)]),
        ("v2-grpc", grpc_all),
    ]:
        calls_before, rows_before = _batch_rows(server)
        assert burst() == expected, name
        calls, total = _batch_rows(server)
        assert total - rows_before == len(rows), name  # every row went through the engine
        assert calls - calls_before < len(rows), f"{name}: {calls - calls_before} engine calls"
