"""Render the chart and the kustomize overlays with the real helm / kubectl binaries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .conftest import CHART, K8S, run, run_ok

NAMESPACE = "models"


def docs(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d]


def helm_template(helm: Path, *args: str) -> str:
    return run_ok([helm, "template", "demo", CHART, "--namespace", NAMESPACE, *args])


def helm_template_fails(helm: Path, *args: str) -> str:
    """Render expecting failure; returns stderr."""
    proc = run([helm, "template", "demo", CHART, "--namespace", NAMESPACE, *args])
    assert proc.returncode != 0, f"helm template {' '.join(args)} unexpectedly succeeded"
    return proc.stderr


def kustomize(kubectl: Path, overlay: str) -> str:
    return run_ok([kubectl, "kustomize", K8S / "overlays" / overlay])


def by_kind(objs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objs if o.get("kind") == kind]


def one(objs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = by_kind(objs, kind)
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


POD_SPEC_KEYS = {
    "securityContext",
    "automountServiceAccountToken",
    "serviceAccountName",
    "volumes",
    "containers",
    "nodeSelector",
    "tolerations",
    "affinity",
    "imagePullSecrets",
}


def project_pods(objs: list[dict[str, Any]], namespace: str = NAMESPACE) -> list[dict[str, Any]]:
    """Pods equivalent to what KServe would create from each predictor / runtime.

    checkov has no policies for KServe CRDs, so their pod specs are projected into
    plain Pods (same containers, securityContext, volumes) for it to check.
    """
    pods = []

    def pod(name: str, spec: dict[str, Any], labels: dict[str, str]) -> None:
        pod_spec = {k: v for k, v in spec.items() if k in POD_SPEC_KEYS}
        if not pod_spec.get("containers"):
            return
        pods.append(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": name, "namespace": namespace, "labels": labels},
                "spec": pod_spec,
            }
        )

    runtimes = {o["metadata"]["name"]: o for o in objs if o["kind"] == "ClusterServingRuntime"}
    for obj in objs:
        if obj["kind"] != "InferenceService":
            continue
        name = obj["metadata"]["name"]
        labels = {"serving.kserve.io/inferenceservice": name}
        pred = obj["spec"]["predictor"]
        runtime = runtimes.get((pred.get("model") or {}).get("runtime", ""))
        if runtime is not None:
            # KServe builds the pod from the runtime's containers/volumes and the
            # predictor's pod-level fields (securityContext, serviceAccount, ...).
            merged = {k: v for k, v in pred.items() if k in POD_SPEC_KEYS}
            merged.update(
                {k: runtime["spec"][k] for k in ("containers", "volumes") if k in runtime["spec"]}
            )
            pod(f"{name}-predictor", merged, labels)
        else:
            pod(f"{name}-predictor", pred, labels)
        for canary in obj["spec"].get("canary", []):
            cname = canary["predictor"].get("name", "canary")
            pod(f"{name}-{cname}-predictor", canary["predictor"], labels)
    return pods
