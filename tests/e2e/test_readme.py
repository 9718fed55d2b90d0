"""The README's examples work: its curl lines and example clients against the bundled
example models, served as `make serve` does; every setting is documented."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from server import ROOT

from predictor.settings import Settings

README = (ROOT / "README.md").read_text()


@pytest.fixture(scope="module")
def examples(tmp_path_factory, start_server):
    out = tmp_path_factory.mktemp("examples")
    subprocess.run(
        [sys.executable, "examples/train.py", "--out", str(out)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    iris = start_server(out / "iris", "iris", wait=False)
    house = start_server(out / "house", "house", wait=False)
    return {"iris": iris.wait_ready(), "house": house.wait_ready()}


def curl_lines() -> list[str]:
    section = README.split("## Calling it", 1)[1].split("### The contract", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.S)
    return [line for block in blocks for line in block.splitlines() if line.startswith("curl")]


def test_readme_has_the_two_setup_commands():
    assert "make serve" in README and "make test" in README
    assert "python -m predictor" in README


@pytest.mark.parametrize("line", curl_lines())
def test_readme_curl_line(examples, line):
    server = examples["house" if "/house" in line else "iris"]
    command = line.replace("localhost:8080", f"127.0.0.1:{server.http_port}")
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    if "/metrics" in line:
        assert 'predictor_requests_total{model="iris"' in out
        return
    doc = json.loads(out)
    assert "error" not in doc
    if "/infer" in line:
        assert doc["outputs"] and all(o["data"] for o in doc["outputs"])
    if ":predict" in line:
        assert len(doc["predictions"]) == 1
    if "v1/models/iris" in line:
        assert doc["predictions"][0] == "setosa" or len(doc["predictions"][0]) == 3


def test_readme_first_answer_matches(examples):
    line = curl_lines()[0]
    command = line.replace("localhost:8080", f"127.0.0.1:{examples['iris'].http_port}")
    doc = json.loads(subprocess.run(["bash", "-c", command], capture_output=True, text=True).stdout)
    assert doc["outputs"][0]["data"] == ["setosa", "virginica"]
    assert doc["outputs"][1]["parameters"]["classes"] == ["setosa", "versicolor", "virginica"]


@pytest.mark.parametrize("script", ["client_tritonclient.py", "client_kserve.py"])
def test_example_clients(examples, script):
    iris = examples["iris"]
    http = f"127.0.0.1:{iris.http_port}"
    if script == "client_kserve.py":
        http = f"http://{http}"
    done = subprocess.run(
        [sys.executable, f"examples/{script}", "--rest-url", http, "--grpc-url", iris.grpc],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "virginica" in done.stdout
    assert done.stdout.count("\n") >= 2


@pytest.mark.parametrize("name", list(Settings.model_fields))
def test_every_setting_is_documented(name):
    assert f"`--{name}`" in README and f"`PREDICTOR_{name.upper()}`" in README
