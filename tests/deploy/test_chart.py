"""Helm chart: real `helm lint --strict`, `helm template` per values file, content checks,
and the chart's own fail-fast validation messages."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from .conftest import CHART, CHART_EXAMPLES, run, run_ok
from .render import by_kind, docs, helm_template, helm_template_fails, one

VARIANTS = ["defaults", *[p.name for p in CHART_EXAMPLES]]


def _values_args(variant: str) -> list[str]:
    return [] if variant == "defaults" else ["-f", str(CHART / "examples" / variant)]


def test_helm_is_v4(helm: Path) -> None:
    out = run_ok([helm, "version", "--short"])
    assert re.match(r"v4\.\d+\.\d+", out.strip()), out


def test_examples_cover_every_autoscaler_and_canary_form() -> None:
    names = {p.name for p in CHART_EXAMPLES}
    for needed in (
        "values-hpa.yaml",
        "values-kpa.yaml",
        "values-keda.yaml",
        "values-canary-knative.yaml",
        "values-canary-standard.yaml",
    ):
        assert needed in names, f"charts/sklearn-predictor/examples/{needed} is missing"


@pytest.mark.parametrize("variant", VARIANTS)
def test_helm_lint_strict(helm: Path, variant: str) -> None:
    proc = run([helm, "lint", "--strict", CHART, *_values_args(variant)])
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "0 chart(s) failed" in out, out
    # helm 4 lint reports a template `fail` as an INFO line, not a failure.
    assert "funcMap fail" not in out, out
    assert "[WARNING]" not in out and "[ERROR]" not in out, out


@pytest.mark.parametrize("variant", VARIANTS)
def test_helm_template_renders_hardened_predictor(helm: Path, variant: str) -> None:
    objs = docs(helm_template(helm, *_values_args(variant)))
    isvc = one(objs, "InferenceService")
    assert isvc["apiVersion"] == "serving.kserve.io/v1beta1"
    labels = isvc["metadata"]["labels"]
    for key in (
        "app.kubernetes.io/name",
        "app.kubernetes.io/instance",
        "app.kubernetes.io/version",
        "app.kubernetes.io/managed-by",
        "helm.sh/chart",
    ):
        assert key in labels, key
    pred = isvc["spec"]["predictor"]
    assert pred["securityContext"]["runAsNonRoot"] is True
    assert pred["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    containers = pred.get("containers") or []
    if "model" in pred:  # runtime form: the runtime supplies the container
        assert pred["model"]["modelFormat"]["name"] == "sklearn"
        assert pred["model"]["securityContext"]["readOnlyRootFilesystem"] is True
        containers = []
    else:
        assert [c["name"] for c in containers] == ["kserve-container"]
    for c in containers:
        sc = c["securityContext"]
        assert sc["runAsNonRoot"] is True and sc["runAsUser"] == 1000
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"]["drop"] == ["ALL"]
        assert sc["seccompProfile"]["type"] == "RuntimeDefault"
        env = {e["name"]: e.get("value") for e in c["env"]}
        assert env["STORAGE_URI"] and env["PREDICTOR_MODEL_NAME"] == "iris"
        assert {"name": "tmp", "mountPath": "/tmp"} in c["volumeMounts"]
        probe_kinds = {k for k in c["readinessProbe"] if k in ("httpGet", "exec")}
        assert probe_kinds, c["readinessProbe"]
        if "httpGet" in c["readinessProbe"]:
            assert c["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
            assert c["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    tests = [
        o
        for o in by_kind(objs, "Pod")
        if o["metadata"]["annotations"].get("helm.sh/hook") == "test"
    ]
    assert len(tests) == 2, "expected the ready + infer helm test pods"
    scripts = " ".join(" ".join(t["spec"]["containers"][0]["command"]) for t in tests)
    if variant == "values-grpc.yaml":
        assert "ModelReady" in scripts and "ModelInfer" in scripts
    else:
        assert "/v2/health/ready" in scripts and "/infer" in scripts


def _isvc(helm: Path, *args: str) -> dict:
    return one(docs(helm_template(helm, *args)), "InferenceService")


def test_hpa_example(helm: Path) -> None:
    objs = docs(helm_template(helm, *_values_args("values-hpa.yaml")))
    isvc = one(objs, "InferenceService")
    ann = isvc["metadata"]["annotations"]
    assert ann["serving.kserve.io/deploymentMode"] == "Standard"
    assert ann["serving.kserve.io/autoscalerClass"] == "hpa"
    pred = isvc["spec"]["predictor"]
    assert (pred["minReplicas"], pred["maxReplicas"]) == (2, 6)
    assert (pred["scaleMetric"], pred["scaleTarget"]) == ("cpu", 70)
    sa = one(objs, "ServiceAccount")
    assert sa["secrets"] == [{"name": "s3-model-credentials"}]
    netpol = one(objs, "NetworkPolicy")
    allowed = [
        f.get("namespaceSelector", {}).get("matchLabels", {})
        for f in netpol["spec"]["ingress"][0]["from"]
    ]
    assert {"kubernetes.io/metadata.name": "istio-system"} in allowed
    assert netpol["spec"]["podSelector"]["matchLabels"] == {
        "serving.kserve.io/inferenceservice": isvc["metadata"]["name"]
    }


def test_kpa_example_scales_to_zero(helm: Path) -> None:
    isvc = _isvc(helm, *_values_args("values-kpa.yaml"))
    assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Knative"
    pred = isvc["spec"]["predictor"]
    assert pred["minReplicas"] == 0 and pred["scaleMetric"] == "concurrency"
    assert pred["containerConcurrency"] == 16


def test_keda_example_queries_own_metric(helm: Path) -> None:
    isvc = _isvc(helm, *_values_args("values-keda.yaml"))
    assert isvc["metadata"]["annotations"]["serving.kserve.io/autoscalerClass"] == "keda"
    metric = isvc["spec"]["predictor"]["autoScaling"]["metrics"][0]
    assert metric["type"] == "External"
    query = metric["external"]["metric"]["query"]
    assert query == 'sum(rate(predictor_requests_total{model="iris",namespace="models"}[1m]))'
    assert metric["external"]["target"] == {"type": "AverageValue", "averageValue": "50"}


def test_canary_knative_example(helm: Path) -> None:
    isvc = _isvc(helm, *_values_args("values-canary-knative.yaml"))
    pred = isvc["spec"]["predictor"]
    assert pred["canaryTrafficPercent"] == 10
    env = {e["name"]: e["value"] for e in pred["containers"][0]["env"]}
    assert env["STORAGE_URI"].endswith("/v2"), "the new revision must serve the canary model"
    assert "canary" not in isvc["spec"]


def test_canary_standard_example(helm: Path) -> None:
    isvc = _isvc(helm, *_values_args("values-canary-standard.yaml"))
    assert isvc["spec"]["predictor"]["name"] == "v1"
    (canary,) = isvc["spec"]["canary"]
    assert canary["trafficPercent"] == 20 and canary["predictor"]["name"] == "v2"
    env = {e["name"]: e["value"] for e in canary["predictor"]["containers"][0]["env"]}
    assert env["STORAGE_URI"].endswith("/v2")
    assert "scaleMetric" not in canary["predictor"] and "autoScaling" not in canary["predictor"]


def test_grpc_example_single_h2c_port(helm: Path) -> None:
    c = _isvc(helm, *_values_args("values-grpc.yaml"))["spec"]["predictor"]["containers"][0]
    assert c["ports"] == [{"name": "h2c", "containerPort": 8081, "protocol": "TCP"}]


def test_runtime_example_uses_cluster_serving_runtime(helm: Path) -> None:
    objs = docs(helm_template(helm, *_values_args("values-runtime.yaml")))
    csr = one(objs, "ClusterServingRuntime")
    assert csr["spec"]["protocolVersions"] == ["v1", "v2", "grpc-v2"]
    assert csr["spec"]["supportedModelFormats"][0]["name"] == "sklearn"
    assert "--model_name={{.Name}}" in csr["spec"]["containers"][0]["args"]
    model = one(objs, "InferenceService")["spec"]["predictor"]["model"]
    assert model["runtime"] == csr["metadata"]["name"]
    logger = one(objs, "InferenceService")["spec"]["predictor"]["logger"]
    assert logger["mode"] == "all" and logger["url"].startswith("http")


def test_engine_and_batching_values_become_env(helm: Path) -> None:
    c = _isvc(
        helm,
        "--set",
        "predictor.engine=onnx",
        "--set",
        "predictor.batching.enabled=true",
        "--set",
        "predictor.batching.maxBatchSize=16",
        "--set",
        "predictor.batching.inlineMaxUs=0",
        "--set",
        "predictor.batching.idleWaitUs=0",
        "--set",
        "model.sha256=" + "a" * 64,
        "--set",
        "extraEnv[0].name=FOO",
        "--set",
        "extraEnv[0].value=bar",
    )["spec"]["predictor"]["containers"][0]
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["PREDICTOR_ENGINE"] == "onnx"
    assert env["PREDICTOR_BATCHING"] == "true"
    assert env["PREDICTOR_MAX_BATCH_SIZE"] == "16"
    assert env["PREDICTOR_INLINE_MAX_US"] == "0"
    assert env["PREDICTOR_IDLE_WAIT_US"] == "0"
    assert env["PREDICTOR_MODEL_SHA256"] == "a" * 64
    assert env["FOO"] == "bar"


FAILURES = [
    (["--set", "model.storageUri="], "model.storageUri is required"),
    (["--set", "autoscaling.mode=kpa"], "needs deploymentMode=Knative"),
    (
        ["--set", "deploymentMode=Knative", "--set", "autoscaling.mode=hpa"],
        "needs deploymentMode=Standard",
    ),
    (["--set", "autoscaling.mode=hpa", "--set", "autoscaling.minReplicas=0"], "scale to zero"),
    (
        [
            "--set",
            "autoscaling.mode=hpa",
            "--set",
            "autoscaling.minReplicas=5",
            "--set",
            "autoscaling.maxReplicas=2",
        ],
        "raise maxReplicas",
    ),
    (["--set", "canary.enabled=true"], "canary.storageUri"),
    (
        ["--set", "canary.enabled=true", "--set", "canary.storageUri=gs://b/v2"],
        "set model.predictorName",
    ),
    (["--set", "logger.enabled=true"], "logger.url"),
    (
        [
            "-f",
            str(CHART / "examples" / "values-kpa.yaml"),
            "--set",
            "podSecurityContext.fsGroup=1000",
        ],
        "Knative rejects podSecurityContext.fsGroup",
    ),
    (
        ["--set", "storage.secretName=s3", "--set", "serviceAccount.create=false"],
        "serviceAccount.create=true",
    ),
    # values.schema.json: typos and wrong enums are rejected before rendering
    (["--set", "autoscaling.mod=hpa"], "additional properties 'mod' not allowed"),
    (["--set", "deploymentMode=Serverless"], "deploymentMode"),
    (["--set", "canary.trafficPercent=150"], "trafficPercent"),
    (["--set", "predictor.engine=tensorflow"], "engine"),
]


@pytest.mark.parametrize(("args", "message"), FAILURES, ids=[m for _, m in FAILURES])
def test_invalid_values_fail_with_a_fix(helm: Path, args: list[str], message: str) -> None:
    err = helm_template_fails(helm, *args)
    assert message in err, err


def test_every_value_is_documented() -> None:
    """Each key of values.yaml has a comment right above it, except the insides of
    free-form Kubernetes objects (resources, securityContext) documented as a whole."""
    freeform = {"resources", "podSecurityContext", "securityContext"}
    lines = (CHART / "values.yaml").read_text().splitlines()
    stack: list[tuple[int, str]] = []
    undocumented = []
    for i, line in enumerate(lines):
        m = re.match(r"^(\s*)([A-Za-z0-9_]+):", line)
        if not m:
            continue
        indent, key = len(m.group(1)), m.group(2)
        while stack and stack[-1][0] >= indent:
            stack.pop()
        inside_freeform = any(k in freeform for _, k in stack)
        documented = i > 0 and lines[i - 1].strip().startswith("#")
        if not documented and not inside_freeform:
            undocumented.append(key)
        stack.append((indent, key))
    assert not undocumented, f"values without a comment above them: {undocumented}"


def test_schema_is_strict_json() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    assert schema["additionalProperties"] is False
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    # every top-level value is described by the schema, and vice versa
    assert set(values) <= set(schema["properties"])
    for key, sub in schema["properties"].items():
        if (
            isinstance(values.get(key), dict)
            and sub.get("type") == "object"
            and key
            not in (
                "podSecurityContext",
                "securityContext",
                "affinity",
                "podAnnotations",
                "podLabels",
                "nodeSelector",
            )
        ):
            assert sub.get("additionalProperties") is False or "$ref" in sub, key


def test_notes_explain_rest_and_grpc(helm: Path) -> None:
    out = run_ok([helm, "install", "iris", CHART, "--dry-run=client", "--namespace", "models"])
    notes = out.split("NOTES:", 1)[1]
    assert "/v2/models/iris/infer" in notes and "curl" in notes
    assert "inference.GRPCInferenceService" in notes
    out = run_ok(
        [
            helm,
            "install",
            "iris",
            CHART,
            "--dry-run=client",
            "--namespace",
            "models",
            "-f",
            CHART / "examples" / "values-grpc.yaml",
        ]
    )
    assert "ModelInfer" in out.split("NOTES:", 1)[1]
