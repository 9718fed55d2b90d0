"""checkov over k8s/, the chart and the Dockerfile, and hadolint on the Dockerfile:
zero failures. Skipped checks are listed with reasons in .checkov.yaml (and two
annotations on the one-shot helm test pods); nothing else may be skipped."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import CHART_EXAMPLES, K8S, OVERLAYS, REPO, TOOLS, run, run_ok
from .render import docs, helm_template, kustomize, project_pods

CHECKOV_CONFIG = REPO / ".checkov.yaml"


def _configured_skips() -> set[str]:
    cfg = yaml.safe_load(CHECKOV_CONFIG.read_text())
    return set(cfg.get("skip-check", []))


def _checkov(checkov: Path, *args: str | os.PathLike[str]) -> list[dict[str, Any]]:
    env = dict(os.environ)
    env["PATH"] = f"{TOOLS / 'bin'}:{env.get('PATH', '')}"
    env["BC_SKIP_MAPPING"] = "TRUE"  # no network: don't fetch guideline mappings
    env["CHECKOV_EXPERIMENTAL_IMAGE_REFERENCING"] = "False"
    proc = run(
        [checkov, "--config-file", CHECKOV_CONFIG, "--skip-download", "-o", "json", *args],
        env=env,
        cwd=REPO,
    )
    try:
        data = json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(
            f"checkov output is not JSON (rc={proc.returncode}):\n"
            f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}",
            pytrace=False,
        )
    return data if isinstance(data, list) else [data]


def _assert_clean(reports: list[dict[str, Any]], min_resources: int) -> dict[str, int]:
    failed, passed, resources = [], 0, 0
    unexpected_skips = []
    allowed = _configured_skips() | {"CKV_K8S_8", "CKV_K8S_9"}
    for rep in reports:
        res = rep.get("results", {})
        failed += [
            f"{f['check_id']} {f['check_name']} @ {f['resource']} ({f.get('file_path')})"
            for f in res.get("failed_checks", [])
        ]
        unexpected_skips += [
            s["check_id"] for s in res.get("skipped_checks", []) if s["check_id"] not in allowed
        ]
        summary = rep.get("summary", {})
        passed += summary.get("passed", 0)
        resources += summary.get("resource_count", 0)
        assert summary.get("parsing_errors", 0) == 0, summary
    assert not failed, "checkov failures:\n" + "\n".join(failed)
    assert not unexpected_skips, f"skips not listed in .checkov.yaml: {unexpected_skips}"
    assert resources >= min_resources and passed > 0, (resources, passed)
    return {"passed": passed, "resources": resources}


def test_checkov_config_lists_reasons() -> None:
    text = CHECKOV_CONFIG.read_text()
    for check in _configured_skips():
        before = text.split(f"- {check}", 1)[0].rstrip().splitlines()
        assert before and before[-1].strip().startswith("#"), f"{check} has no reason comment"


def test_checkov_dockerfile(checkov: Path) -> None:
    reports = _checkov(checkov, "-f", "Dockerfile", "--framework", "dockerfile")
    _assert_clean(reports, min_resources=1)


def test_checkov_k8s_and_chart(checkov: Path, kubectl: Path, helm: Path, tmp_path: Path) -> None:
    """checkov's kubernetes policies over: every overlay, every chart variant (rendered
    in a non-default namespace), and Pods projected from the KServe predictors and the
    ClusterServingRuntime (checkov has no KServe CRD policies of its own)."""
    rendered: dict[str, list[dict[str, Any]]] = {}
    for overlay in OVERLAYS:
        rendered[f"overlay-{overlay}"] = docs(kustomize(kubectl, overlay))
    rendered["k8s-runtime-example"] = docs(run_ok([kubectl, "kustomize", K8S / "base"])) + docs(
        (K8S / "examples" / "inferenceservice-runtime.yaml").read_text()
    )
    rendered["chart-defaults"] = docs(helm_template(helm))
    for f in CHART_EXAMPLES:
        rendered[f"chart-{f.stem}"] = docs(helm_template(helm, "-f", str(f)))
    n_pods = 0
    for name, objs in rendered.items():
        pods = project_pods(objs)
        n_pods += len(pods)
        core = [o for o in objs if not o["apiVersion"].startswith("serving.kserve.io/")]
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump_all(core + pods))
    assert n_pods >= len(rendered), "every variant should project at least one predictor pod"
    runtime_pods = [
        p
        for name in rendered
        for p in project_pods(rendered[name])
        if p["spec"]["containers"][0]["args"][0] == "--model_name={{.Name}}"
    ]
    assert len(runtime_pods) >= 2, "the runtime form (chart + k8s example) must be projected"
    reports = _checkov(checkov, "-d", tmp_path, "--framework", "kubernetes")
    stats = _assert_clean(reports, min_resources=n_pods)
    print(f"checkov kubernetes: {stats}")


def test_checkov_raw_k8s_dir(checkov: Path) -> None:
    """checkov over k8s/ itself (kustomize framework renders the overlays): no failures.
    It finds no resources it has policies for (only KServe CRDs), hence the projection
    test above."""
    reports = _checkov(checkov, "-d", "k8s", "--framework", "kubernetes", "kustomize")
    for rep in reports:
        assert not rep.get("results", {}).get("failed_checks"), rep


def test_checkov_catches_a_bad_pod(checkov: Path, tmp_path: Path) -> None:
    """The checkov run can fail: a privileged root container is reported."""
    bad = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "bad", "namespace": "models"},
        "spec": {
            "containers": [{"name": "c", "image": "x:1", "securityContext": {"privileged": True}}]
        },
    }
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(bad))
    reports = _checkov(checkov, "-d", tmp_path, "--framework", "kubernetes")
    ids = {f["check_id"] for r in reports for f in r.get("results", {}).get("failed_checks", [])}
    assert "CKV_K8S_16" in ids, ids  # privileged container


def test_hadolint_dockerfile(hadolint: Path) -> None:
    proc = run([hadolint, "--no-color", "--failure-threshold", "info", REPO / "Dockerfile"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == "", proc.stdout


def test_hadolint_can_fail(hadolint: Path, tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM debian\nRUN apt-get install -y curl\nCMD curl x\n")
    proc = run([hadolint, "--no-color", bad])
    assert proc.returncode != 0 and "DL3008" in proc.stdout, proc.stdout
    assert run_ok([hadolint, "--version"]).startswith("Haskell Dockerfile Linter")
