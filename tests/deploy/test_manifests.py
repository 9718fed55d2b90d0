"""Kustomize overlays rendered by the real kubectl, and every rendered object (overlays,
examples, every chart variant) validated against its schema with unknown fields rejected:
KServe kinds against the CRDs in ../shared/schemas/kserve, core kinds against the
Kubernetes 1.35 strict JSON schemas (kubernetes-validate)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import K8S, OVERLAYS, REPO, run, run_ok
from .render import docs, helm_template, kustomize, one

EXPECTED_OVERLAYS = {"standard", "serverless", "keda", "canary-knative", "canary-standard", "grpc"}


def _validate(validate_python: Path, text: str, *extra: str) -> dict[str, Any]:
    """Run tests/deploy/kvalidate.py in the tools venv on YAML text; return its summary."""
    proc = run(
        [validate_python, REPO / "tests" / "deploy" / "kvalidate.py", "-", *extra], input=text
    )
    lines = proc.stdout.strip().splitlines()
    assert lines, proc.stderr
    summary = json.loads(lines[-1])
    summary["returncode"] = proc.returncode
    summary["report"] = proc.stdout
    return summary


def test_kubectl_is_135(kubectl: Path) -> None:
    out = run_ok([kubectl, "version", "--client"])
    assert "Client Version: v1.35." in out, out
    assert "Kustomize Version: v5" in out, out


def test_all_overlays_present() -> None:
    assert set(OVERLAYS) >= EXPECTED_OVERLAYS, set(OVERLAYS)


def _isvc(kubectl: Path, overlay: str) -> dict[str, Any]:
    return one(docs(kustomize(kubectl, overlay)), "InferenceService")


def test_base_is_hardened_custom_container(kubectl: Path) -> None:
    objs = docs(run_ok([kubectl, "kustomize", K8S / "base"]))
    isvc = one(objs, "InferenceService")
    pred = isvc["spec"]["predictor"]
    (c,) = pred["containers"]
    assert c["name"] == "kserve-container"
    assert c["image"].endswith("/sklearn-predictor:0.1.0"), "kustomize images: not applied"
    env = {e["name"]: e["value"] for e in c["env"]}
    assert env["STORAGE_URI"].startswith("gs://")
    assert c["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert c["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    sc = c["securityContext"]
    assert sc["runAsNonRoot"] and sc["runAsUser"] == 1000 and sc["readOnlyRootFilesystem"]
    assert (
        sc["capabilities"]["drop"] == ["ALL"] and sc["seccompProfile"]["type"] == "RuntimeDefault"
    )
    assert c["resources"]["requests"] and c["resources"]["limits"]
    assert {"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}} in pred["volumes"]
    csr = one(objs, "ClusterServingRuntime")
    assert csr["spec"]["protocolVersions"] == ["v1", "v2", "grpc-v2"]
    fmt = csr["spec"]["supportedModelFormats"][0]
    assert fmt["name"] == "sklearn"
    rc = csr["spec"]["containers"][0]
    assert rc["image"] == c["image"]
    assert rc["args"][0] == "--model_name={{.Name}}"
    assert rc["securityContext"] == c["securityContext"]
    assert rc["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"


def test_overlay_standard_hpa(kubectl: Path) -> None:
    isvc = _isvc(kubectl, "standard")
    ann, pred = isvc["metadata"]["annotations"], isvc["spec"]["predictor"]
    assert ann["serving.kserve.io/deploymentMode"] == "Standard"
    assert ann["serving.kserve.io/autoscalerClass"] == "hpa"
    assert pred["scaleMetric"] == "cpu" and pred["minReplicas"] < pred["maxReplicas"]


def test_overlay_serverless_kpa_scale_to_zero(kubectl: Path) -> None:
    isvc = _isvc(kubectl, "serverless")
    ann, pred = isvc["metadata"]["annotations"], isvc["spec"]["predictor"]
    assert ann["serving.kserve.io/deploymentMode"] == "Knative"
    assert "serving.kserve.io/autoscalerClass" not in ann
    assert pred["minReplicas"] == 0 and pred["scaleMetric"] in ("concurrency", "rps")
    assert pred["containerConcurrency"] > 0


def test_overlay_keda_prometheus_on_own_metric(kubectl: Path) -> None:
    isvc = _isvc(kubectl, "keda")
    assert isvc["metadata"]["annotations"]["serving.kserve.io/autoscalerClass"] == "keda"
    ext = isvc["spec"]["predictor"]["autoScaling"]["metrics"][0]["external"]
    assert ext["metric"]["backend"] == "prometheus"
    assert re.search(
        r"rate\(predictor_requests_total\{model=\"iris\"\}\[1m\]\)", ext["metric"]["query"]
    )


def test_overlay_canary_knative(kubectl: Path) -> None:
    isvc = _isvc(kubectl, "canary-knative")
    pred = isvc["spec"]["predictor"]
    assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Knative"
    assert pred["canaryTrafficPercent"] == 10
    env = {e["name"]: e["value"] for e in pred["containers"][0]["env"]}
    assert env["STORAGE_URI"].endswith("/v2")


def test_overlay_canary_standard(kubectl: Path) -> None:
    isvc = _isvc(kubectl, "canary-standard")
    assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Standard"
    assert isvc["spec"]["predictor"]["name"] == "v1"
    (canary,) = isvc["spec"]["canary"]
    assert canary["trafficPercent"] == 20 and canary["predictor"]["name"] == "v2"
    c = canary["predictor"]["containers"][0]
    assert c["image"] == isvc["spec"]["predictor"]["containers"][0]["image"]
    assert {e["name"]: e["value"] for e in c["env"]}["STORAGE_URI"].endswith("/v2")


def test_overlay_grpc_single_h2c_port(kubectl: Path) -> None:
    isvc = _isvc(kubectl, "grpc")
    c = isvc["spec"]["predictor"]["containers"][0]
    assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Knative"
    assert c["ports"] == [{"name": "h2c", "containerPort": 8081, "protocol": "TCP"}]
    assert "/v2/health/ready" in " ".join(c["readinessProbe"]["exec"]["command"])


def test_kubernetes_validate_ships_135(validate_python: Path) -> None:
    out = run_ok(
        [
            validate_python,
            "-c",
            "import kubernetes_validate as k; print(' '.join(k.utils.all_versions()))",
        ]
    )
    assert "1.35.0" in out.split(), out


def test_every_rendered_object_is_valid(validate_python: Path) -> None:
    proc = run(
        [
            validate_python,
            REPO / "tests" / "deploy" / "kvalidate.py",
            "--all",
            "--tools",
            REPO / ".tools",
        ]
    )
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert proc.returncode == 0 and summary["invalid"] == 0, proc.stdout[-6000:]
    assert summary["k8s_version"] == "1.35.0"
    sources = {r["source"] for r in summary["results"]}
    for overlay in EXPECTED_OVERLAYS:
        assert f"k8s/overlays/{overlay}" in sources
    kinds = {(r["kind"]) for r in summary["results"]}
    assert {
        "InferenceService",
        "ClusterServingRuntime",
        "ServiceAccount",
        "Pod",
        "NetworkPolicy",
    } <= kinds, kinds
    # every chart variant and overlay rendered an InferenceService
    with_isvc = {r["source"] for r in summary["results"] if r["kind"] == "InferenceService"}
    assert len(with_isvc) >= len(EXPECTED_OVERLAYS) + 6, with_isvc


MISSPELLINGS = [
    # (what, mutate(obj) on a deep copy, expected substring in the error)
    (
        "container field",
        lambda o: o["spec"]["predictor"]["containers"][0].update(
            readinesProbe=o["spec"]["predictor"]["containers"][0].pop("readinessProbe")
        ),
        "'readinesProbe' was unexpected",
    ),
    (
        "predictor field",
        lambda o: o["spec"]["predictor"].update(
            minReplica=o["spec"]["predictor"].pop("minReplicas")
        ),
        "'minReplica' was unexpected",
    ),
    (
        "canary field",
        lambda o: o["spec"]["canary"][0].update(
            trafficPercentage=o["spec"]["canary"][0].pop("trafficPercent")
        ),
        "'trafficPercentage' was unexpected",
    ),
    (
        "metadata field",
        lambda o: o["metadata"].update(anotations=o["metadata"].pop("annotations")),
        "anotations",
    ),
    (
        "wrong type",
        lambda o: o["spec"]["canary"][0].update(trafficPercent="20"),
        "is not of type 'integer'",
    ),
    (
        "out of range",
        lambda o: o["spec"]["canary"][0].update(trafficPercent=120),
        "greater than the maximum",
    ),
]


@pytest.mark.parametrize(
    ("what", "mutate", "expected"), MISSPELLINGS, ids=[m[0] for m in MISSPELLINGS]
)
def test_validator_rejects_misspelled_fields(
    kubectl: Path, validate_python: Path, what: str, mutate: Any, expected: str
) -> None:
    text = kustomize(kubectl, "canary-standard")
    good = _validate(validate_python, text)
    assert good["returncode"] == 0 and good["invalid"] == 0, good["report"]
    objs = docs(text)
    isvc = one(objs, "InferenceService")
    mutate(isvc)
    bad = _validate(validate_python, yaml.safe_dump_all(objs))
    assert bad["returncode"] == 1 and bad["invalid"] == 1, bad["report"]
    errors = " ".join(e for r in bad["results"] for e in r["errors"])
    assert expected in errors, errors


def test_validator_rejects_misspelled_core_field(helm: Path, validate_python: Path) -> None:
    objs = docs(helm_template(helm))
    sa = one(objs, "ServiceAccount")
    sa["automountServiceAcountToken"] = sa.pop("automountServiceAccountToken")
    bad = _validate(validate_python, yaml.safe_dump_all(objs))
    assert bad["returncode"] == 1, bad["report"]
    assert "automountServiceAcountToken" in bad["report"]


def test_validator_rejects_unknown_kinds(validate_python: Path) -> None:
    text = "apiVersion: serving.kserve.io/v1beta1\nkind: InferenceServise\nmetadata: {name: x}\n"
    bad = _validate(validate_python, text)
    assert bad["returncode"] == 1 and "no KServe CRD schema" in bad["report"]
    text = "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: x}\n"
    bad = _validate(validate_python, text)
    assert bad["returncode"] == 1 and "no schema" in bad["report"]
