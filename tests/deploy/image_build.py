"""Build the predictor image for the image test: debootstrap base + podman build.

The build takes minutes from cold, so when the image test is selected the deploy
conftest starts it in a background thread at the start of the session (`prebuild`) and
moves the image tests to the end: the build overlaps with the rest of the suite and the
image tests only wait for what is left. Set DEPLOY_IMAGE_PREBUILD=0 to build in the
test itself instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from .conftest import REPO, run, run_ok

BASE_TAG = os.environ.get("DEPLOY_TEST_BASE", "localhost/sklearn-predictor-testbase:bookworm")
IMAGE_TAG = os.environ.get("DEPLOY_TEST_IMAGE", "localhost/sklearn-predictor:test")
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
TIMINGS: dict[str, float] = {}


def _log(msg: str) -> None:
    print(f"[image-test] {msg}", file=sys.stderr, flush=True)


def _need(binary: str) -> str:
    found = shutil.which(binary)
    if not found:
        pytest.fail(f"{binary} is missing: run `make tools`", pytrace=False)
    return found


def build_base(podman: str) -> None:
    """debootstrap a minimal bookworm with python3 + venv and import it (once)."""
    if run([podman, "image", "exists", BASE_TAG]).returncode == 0:
        _log(f"base {BASE_TAG} already present, reusing it")
        return
    debootstrap = _need("debootstrap")
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="deboot-", dir="/var/tmp") as tmp:
        root = Path(tmp) / "rootfs"
        run_ok(
            [
                debootstrap,
                "--variant=minbase",
                "--include=python3,python3-venv",
                "bookworm",
                root,
            ]
        )
        # Keep the base small: no apt lists or caches in the image.
        for junk in ("var/lib/apt/lists", "var/cache/apt/archives"):
            for child in (root / junk).glob("*"):
                if child.is_file():
                    child.unlink()
        tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
        imp = subprocess.run(
            [podman, "import", "--change", 'CMD ["/bin/bash"]', "-", BASE_TAG],
            stdin=tar.stdout,
            capture_output=True,
            text=True,
            check=False,
        )
        tar.wait()
        if imp.returncode != 0 or tar.returncode != 0:
            pytest.fail(f"podman import failed: {imp.stderr[-2000:]}", pytrace=False)
    TIMINGS["base (debootstrap + import)"] = time.monotonic() - t0


def build_image(podman: str) -> None:
    t0 = time.monotonic()
    run_ok(
        [
            podman,
            "build",
            "--isolation=chroot",
            "--network=host",
            "--build-arg",
            f"BASE_IMAGE={BASE_TAG}",
            "-v",
            f"{CA_BUNDLE}:{CA_BUNDLE}:ro",
            "-t",
            IMAGE_TAG,
            "-f",
            REPO / "Dockerfile",
            REPO,
        ]
    )
    TIMINGS["podman build"] = time.monotonic() - t0


class _Prebuild:
    def __init__(self) -> None:
        self.thread: threading.Thread | None = None
        self.error: BaseException | None = None
        self.started = 0.0

    def start(self) -> None:
        podman = shutil.which("podman")
        if self.thread is not None or not podman:
            return  # without podman the test itself fails with the proper message
        self.started = time.monotonic()

        def work() -> None:
            try:
                build_base(podman)
                build_image(podman)
            except BaseException as err:  # reported by ensure_built in the test
                self.error = err

        _log("building the base and the image in the background")
        self.thread = threading.Thread(target=work, name="image-prebuild", daemon=True)
        self.thread.start()


PREBUILD = _Prebuild()


def ensure_built(podman: str) -> None:
    """Wait for the background build, or build now if none was started."""
    if PREBUILD.thread is None:
        build_base(podman)
        build_image(podman)
        return
    t0 = time.monotonic()
    PREBUILD.thread.join()
    TIMINGS["waited for background build"] = time.monotonic() - t0
    if PREBUILD.error is not None:
        raise PREBUILD.error
