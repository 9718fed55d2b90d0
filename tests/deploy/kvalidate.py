"""Validate rendered Kubernetes objects against real schemas, rejecting unknown fields.

Runs with the tools virtualenv (.tools/venv-validate: jsonschema, kubernetes-validate,
pyyaml), kept apart from the package's own pins:

    .tools/venv-validate/bin/python tests/deploy/kvalidate.py [FILE|-]...
    .tools/venv-validate/bin/python tests/deploy/kvalidate.py --all   # render + validate all

* KServe kinds (``serving.kserve.io``): the CRD's ``openAPIV3Schema`` from
  ``../shared/schemas/kserve/`` (KServe v0.20 CRDs). The API server rejects unknown
  fields unless a schema says ``x-kubernetes-preserve-unknown-fields: true``; JSON
  schema does not know that rule, so every object schema with ``properties`` and no
  such marker (and no ``additionalProperties`` of its own) gets
  ``additionalProperties: false`` here. ``metadata`` is checked against Kubernetes'
  own ObjectMeta (strict), as the API server does.
* Every other kind: kubernetes-validate's strict JSON schemas for Kubernetes
  ``--k8s-version`` (default 1.35.0), which already forbid unknown fields.
* Anything else (an unknown group or kind) is an error: nothing passes unchecked.

Prints one line per object and a JSON summary on the last line; exit status 1 if any
object is invalid.
"""

from __future__ import annotations

import argparse
import copy
import functools
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
KSERVE_CRDS = SHARED / "schemas" / "kserve"
DEFAULT_K8S = "1.35.0"


# --------------------------------------------------------------------------- schemas
def strictify(schema: Any) -> Any:
    """Copy of a CRD schema that rejects unknown fields like the API server does."""
    if isinstance(schema, list):
        return [strictify(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: strictify(v) for k, v in schema.items()}
    if (
        "properties" in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
        and "additionalProperties" not in out
    ):
        out["additionalProperties"] = False
    return out


_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@functools.cache
def kserve_schemas() -> dict[tuple[str, str], dict]:
    """(apiVersion, kind) -> strict openAPIV3Schema, from every CRD in shared/.

    Parsing ~2 MB of CRD YAML takes seconds, so the strict schemas are cached as JSON
    (keyed by the CRD files' sha256) in the system temp directory.
    """
    if not KSERVE_CRDS.is_dir():
        raise SystemExit(f"KServe CRDs not found in {KSERVE_CRDS}")
    files = sorted(KSERVE_CRDS.glob("*.yaml"))
    digest = hashlib.sha256()
    for f in files:
        digest.update(f.name.encode() + b"\0" + f.read_bytes())
    digest.update(Path(__file__).read_bytes())  # a change here invalidates the cache
    cache = Path(tempfile.gettempdir()) / f"kvalidate-kserve-{digest.hexdigest()[:16]}.json"
    if cache.exists():
        raw = json.loads(cache.read_text())
        return {(a, k): v for a, k, v in raw}
    found: dict[tuple[str, str], dict] = {}
    for crd_file in files:
        crd = yaml.load(crd_file.read_text(), Loader=_Loader)
        group = crd["spec"]["group"]
        kind = crd["spec"]["names"]["kind"]
        for ver in crd["spec"]["versions"]:
            if not ver.get("served", True):
                continue
            raw_schema = copy.deepcopy(ver["schema"]["openAPIV3Schema"])
            # metadata is validated separately against ObjectMeta (the CRD says only
            # "type: object" there).
            raw_schema["properties"]["metadata"] = {"type": "object"}
            found[(f"{group}/{ver['name']}", kind)] = strictify(raw_schema)
    tmp = cache.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps([[a, k, v] for (a, k), v in found.items()]))
    tmp.replace(cache)
    return found


def check_object_meta(meta: Any, k8s_version: str) -> list[str]:
    """Validate metadata through a strict ConfigMap wrapper (ObjectMeta is shared)."""
    probe = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta}
    try:
        kubernetes_validate.validate(probe, k8s_version, strict=True)
    except kubernetes_validate.ValidationError as err:
        return [f"metadata: {err.message} (at {'.'.join(map(str, err.path))})"]
    return []


def _where(err: jsonschema.ValidationError) -> str:
    return ".".join(str(p) for p in err.absolute_path) or "<root>"


def validate_object(obj: Any, k8s_version: str = DEFAULT_K8S) -> list[str]:
    """Return a list of error messages (empty when the object is valid)."""
    if not isinstance(obj, dict):
        return [f"not a mapping: {type(obj).__name__}"]
    api, kind = obj.get("apiVersion"), obj.get("kind")
    if not api or not kind:
        return ["apiVersion and kind are required"]
    if not isinstance(obj.get("metadata"), dict) or not obj["metadata"].get("name"):
        return ["metadata.name is required"]
    if str(api).startswith("serving.kserve.io/"):
        schema = kserve_schemas().get((api, kind))
        if schema is None:
            return [f"no KServe CRD schema for {kind} {api} in {KSERVE_CRDS}"]
        validator = jsonschema.Draft7Validator(schema)
        errors = [
            f"{_where(e)}: {e.message}"
            for e in sorted(validator.iter_errors(obj), key=lambda e: list(e.absolute_path))
        ]
        return errors + check_object_meta(obj["metadata"], k8s_version)
    try:
        kubernetes_validate.validate(obj, k8s_version, strict=True)
    except kubernetes_validate.SchemaNotFoundError:
        return [f"no schema for {kind} {api} (Kubernetes {k8s_version}, KServe CRDs)"]
    except kubernetes_validate.ValidationError as err:
        return [f"{'.'.join(map(str, err.path)) or '<root>'}: {err.message}"]
    return []


def load_documents(text: str) -> list[Any]:
    return [d for d in yaml.load_all(text, Loader=_Loader) if d is not None]


def validate_stream(text: str, source: str, k8s_version: str) -> list[dict]:
    results = []
    for doc in load_documents(text):
        items = doc.get("items", []) if doc.get("kind") == "List" else [doc]
        for obj in items:
            errors = validate_object(obj, k8s_version)
            meta = obj.get("metadata") or {} if isinstance(obj, dict) else {}
            results.append(
                {
                    "source": source,
                    "kind": obj.get("kind") if isinstance(obj, dict) else None,
                    "apiVersion": obj.get("apiVersion") if isinstance(obj, dict) else None,
                    "name": meta.get("name") if isinstance(meta, dict) else None,
                    "errors": errors,
                }
            )
    return results


# --------------------------------------------------------------------------- rendering
def render_all(tools: Path) -> list[tuple[str, str]]:
    """(source label, YAML) for every overlay and every chart values file."""
    helm, kubectl = tools / "bin" / "helm", tools / "bin" / "kubectl"
    chart = REPO / "charts" / "sklearn-predictor"
    rendered = []
    for overlay in sorted((REPO / "k8s" / "overlays").iterdir()):
        out = subprocess.run(
            [str(kubectl), "kustomize", str(overlay)], capture_output=True, text=True, check=True
        ).stdout
        rendered.append((f"k8s/overlays/{overlay.name}", out))
    for example in sorted((REPO / "k8s" / "examples").glob("*.yaml")):
        rendered.append((f"k8s/examples/{example.name}", example.read_text()))
    variants: list[list[str]] = [[]] + [
        ["-f", str(f)] for f in sorted((chart / "examples").glob("values-*.yaml"))
    ]
    for extra in variants:
        out = subprocess.run(
            [str(helm), "template", "demo", str(chart), "--namespace", "models", *extra],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        label = "chart:" + (Path(extra[1]).name if extra else "defaults")
        rendered.append((label, out))
    return rendered


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("files", nargs="*", help="YAML files ('-' for stdin)")
    ap.add_argument("--all", action="store_true", help="render every overlay + chart variant")
    ap.add_argument("--k8s-version", default=DEFAULT_K8S)
    ap.add_argument("--tools", default=str(REPO / ".tools"))
    args = ap.parse_args(argv)

    inputs: list[tuple[str, str]] = []
    if args.all:
        inputs += render_all(Path(args.tools))
    for f in args.files:
        inputs.append((f, sys.stdin.read() if f == "-" else Path(f).read_text()))
    if not inputs:
        ap.error("nothing to validate")

    results = []
    for source, text in inputs:
        results += validate_stream(text, source, args.k8s_version)
    bad = 0
    for r in results:
        status = "FAIL" if r["errors"] else "ok"
        print(f"{status:4} {r['source']}: {r['kind']} {r['apiVersion']} {r['name']}")
        for e in r["errors"]:
            print(f"       - {e}")
        bad += bool(r["errors"])
    print(
        json.dumps(
            {
                "objects": len(results),
                "invalid": bad,
                "k8s_version": args.k8s_version,
                "results": results,
            }
        )
    )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
