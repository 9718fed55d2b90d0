"""skaffold.yaml against the real v4beta14 JSON schema; Dockerfile / .dockerignore /
requirements.lock contract (static; the slow test_image.py builds and serves it)."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import yaml

from .conftest import REPO, run

SKAFFOLD = REPO / "skaffold.yaml"


def _skaffold_errors(validate_python: Path, shared: Path, doc: dict[str, Any]) -> list[str]:
    code = (
        "import json, sys, jsonschema\n"
        "schema = json.load(open(sys.argv[1]))\n"
        "doc = json.load(sys.stdin)\n"
        "v = jsonschema.Draft7Validator(schema)\n"
        "errs = [f\"{'.'.join(map(str, e.absolute_path))}: {e.message}\"\n"
        "        for e in v.iter_errors(doc)]\n"
        "print(json.dumps(errs))\n"
    )
    proc = run(
        [validate_python, "-c", code, shared / "schemas" / "skaffold" / "v4beta14.json"],
        input=json.dumps(doc),
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_skaffold_matches_v4beta14_schema(validate_python: Path, shared: Path) -> None:
    doc = yaml.safe_load(SKAFFOLD.read_text())
    assert doc["apiVersion"] == "skaffold/v4beta14" and doc["kind"] == "Config"
    assert _skaffold_errors(validate_python, shared, doc) == []


def test_skaffold_schema_rejects_typos(validate_python: Path, shared: Path) -> None:
    doc = yaml.safe_load(SKAFFOLD.read_text())
    doc["portForward"][0]["localPrt"] = doc["portForward"][0].pop("localPort")
    errors = _skaffold_errors(validate_python, shared, doc)
    assert any("localPrt" in e for e in errors), errors


def test_skaffold_wiring() -> None:
    doc = yaml.safe_load(SKAFFOLD.read_text())
    (artifact,) = doc["build"]["artifacts"]
    image = artifact["image"]
    key = re.sub(r"[^A-Za-z0-9]", "_", image)
    (release,) = doc["manifests"]["helm"]["releases"]
    assert release["chartPath"] == "charts/sklearn-predictor"
    templates = release["setValueTemplates"]
    assert templates["image.repository"] == f"{{{{.IMAGE_REPO_{key}}}}}"
    assert templates["image.tag"] == f"{{{{.IMAGE_TAG_{key}}}}}"
    assert "helm" in doc["deploy"]
    assert {p["port"] for p in doc["portForward"]} == {8080, 8081}
    assert "/v2/health/ready" in json.dumps(doc["verify"])
    (profile,) = [p for p in doc["profiles"] if p["name"] == "kustomize"]
    assert profile["manifests"]["kustomize"]["paths"] == ["k8s/overlays/standard"]
    allow = {a["groupKind"]: a.get("image") for a in profile["resourceSelector"]["allow"]}
    assert allow.get("InferenceService.serving.kserve.io") == [".*"]
    # The kustomize overlays render the image under the artifact's name, so skaffold
    # can substitute its build there.
    base = yaml.safe_load((REPO / "k8s" / "base" / "kustomization.yaml").read_text())
    (img,) = base["images"]
    assert img["newName"] == image


def test_dockerfile_contract() -> None:
    text = (REPO / "Dockerfile").read_text()
    instructions = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
    froms = [ln for ln in instructions if ln.startswith("FROM ")]
    assert len(froms) == 2 and all("${BASE_IMAGE}" in f for f in froms), froms
    assert "ARG BASE_IMAGE=python:3.11-slim" in instructions
    assert "USER 1000:1000" in instructions
    assert re.search(r"^EXPOSE 8080 8081$", text, re.M)
    entry = [ln for ln in instructions if ln.startswith("ENTRYPOINT ")]
    assert len(entry) == 1 and json.loads(entry[0].split(" ", 1)[1])[2] == "predictor"
    assert "/mnt/models" in text and "HOME=/tmp" in text and "PYTHONDONTWRITEBYTECODE=1" in text
    final = text.split(froms[1], 1)[1]
    for compiler_pkg in ("gcc", "build-essential", "apt-get install"):
        assert compiler_pkg not in final, f"{compiler_pkg} in the final stage"
    assert "requirements.lock" in text


def test_dockerignore_is_an_allow_list() -> None:
    lines = [
        ln.strip()
        for ln in (REPO / ".dockerignore").read_text().splitlines()
        if ln.strip() and not ln.startswith("#")
    ]
    assert lines[0] == "*"
    allowed = {ln[1:].rstrip("/") for ln in lines if ln.startswith("!")}
    assert {"predictor", "pyproject.toml", "requirements.lock"} <= allowed
    assert not allowed & {".venv", ".tools", "tests", ".git"}


def _lock() -> dict[str, str]:
    pins = {}
    for ln in (REPO / "requirements.lock").read_text().splitlines():
        if ln and not ln.startswith("#"):
            name, version = ln.split("==")
            pins[re.sub(r"[-_.]+", "-", name).lower()] = version
    return pins


def test_lock_pins_every_runtime_dependency() -> None:
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = _lock()
    missing = []
    for dep in deps:
        name = re.sub(r"[-_.]+", "-", re.split(r"[<>=!~\[; ]", dep, maxsplit=1)[0]).lower()
        if name not in pins:
            missing.append(name)
    assert not missing, f"requirements.lock lacks {missing}: run `make lock`"


def test_lock_matches_dev_sklearn() -> None:
    """Models pickled by the dev venv must load in the image: same scikit-learn."""
    import joblib
    import numpy
    import sklearn

    pins = _lock()
    assert pins["scikit-learn"] == sklearn.__version__, "run `make lock`"
    assert pins["numpy"] == numpy.__version__, "run `make lock`"
    assert pins["joblib"] == joblib.__version__, "run `make lock`"
