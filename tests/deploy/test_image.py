"""Build the real Dockerfile with podman and serve a model from the built image.

No Docker engine and no working `podman run` here (cgroups), so:
1. base: `debootstrap --variant=minbase bookworm` + python3 + python3-venv, `podman import`
   (built once and kept as a local image; later runs of the session reuse it);
2. `podman build --isolation=chroot --network=host --build-arg BASE_IMAGE=<base>` with the
   host CA bundle mounted, exactly as a user would build it (the Dockerfile is unchanged:
   its default base stays python:3.11-slim);
3. run the image's own ENTRYPOINT + CMD + Env + User (from `podman image inspect`) inside
   `podman image mount`'s root, in a private mount namespace: root re-mounted READ-ONLY
   (as readOnlyRootFilesystem would), a writable /tmp, /proc and /dev bound, a model
   trained by the host virtualenv at /mnt/models, chroot as uid 1000;
4. call /v2/health/ready and one V2 inference, then stop it and unmount.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import REPO, run, run_ok
from .image_build import IMAGE_TAG, TIMINGS, _log, _need, ensure_built
from .render import docs, helm_template

# Cold: debootstrap + a full pip install inside the build; pytest's default 600 s is
# too short for the first test of the module, which builds everything.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]


def train_model(dest: Path) -> None:
    """Train an iris classifier (string classes) with the HOST virtualenv's scikit-learn."""
    code = (
        "import sys, joblib\n"
        "from sklearn.datasets import load_iris\n"
        "from sklearn.linear_model import LogisticRegression\n"
        "d = load_iris()\n"
        "y = d.target_names[d.target]\n"
        "m = LogisticRegression(max_iter=500).fit(d.data, y)\n"
        "joblib.dump(m, sys.argv[1])\n"
    )
    dest.mkdir(parents=True, exist_ok=True)
    run_ok([sys.executable, "-c", code, dest / "model.joblib"])
    for p in [dest, *dest.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _http(method: str, url: str, body: dict | None = None) -> tuple[int, bytes]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


@pytest.fixture(scope="module")
def built_image(podman: str) -> Iterator[dict]:
    t0 = time.monotonic()
    ensure_built(podman)
    info = json.loads(run_ok([podman, "image", "inspect", IMAGE_TAG]))[0]
    yield info
    TIMINGS["total (base + build + serve)"] = time.monotonic() - t0
    _log("timings: " + ", ".join(f"{k}={v:.0f}s" for k, v in TIMINGS.items()))


def test_image_config(built_image: dict) -> None:
    cfg = built_image["Config"]
    assert cfg.get("User") == "1000:1000", "final stage must run as numeric uid 1000"
    assert cfg.get("Entrypoint") == ["/opt/venv/bin/python", "-m", "predictor"]
    assert {"8080/tcp", "8081/tcp"} <= set(cfg.get("ExposedPorts") or {})
    env = dict(e.split("=", 1) for e in cfg.get("Env", []))
    assert env.get("HOME") == "/tmp" and env.get("TMPDIR") == "/tmp"
    assert env.get("PYTHONDONTWRITEBYTECODE") == "1"
    assert env.get("PREDICTOR_MODEL_DIR") == "/mnt/models"


@pytest.fixture(scope="module")
def image_root(podman: str, built_image: dict) -> Iterator[Path]:
    mnt = Path(run_ok([podman, "image", "mount", IMAGE_TAG]).strip())
    try:
        yield mnt
    finally:
        run([podman, "image", "unmount", IMAGE_TAG])


def test_image_has_no_compilers_and_pins_sklearn(image_root: Path) -> None:
    for cc in ("gcc", "cc", "g++", "clang", "make"):
        assert not (image_root / "usr" / "bin" / cc).exists(), f"{cc} in the final image"
    lock = (REPO / "requirements.lock").read_text()
    import sklearn  # the host venv's: the one that pickles the models

    assert f"scikit-learn=={sklearn.__version__}\n" in lock
    site = list((image_root / "opt" / "venv" / "lib").glob("python3*/site-packages"))
    assert site, "no virtualenv in /opt/venv"
    dists = [p.name for p in site[0].glob("scikit_learn-*.dist-info")]
    assert dists == [f"scikit_learn-{sklearn.__version__}.dist-info"], dists


def test_image_serves_v2_readonly_root(built_image: dict, image_root: Path, helm: Path) -> None:
    cfg = built_image["Config"]
    unshare = _need("unshare")
    _need("chroot")  # used inside the namespace script
    http_port, grpc_port = _free_port(), _free_port()
    with tempfile.TemporaryDirectory(prefix="img-serve-") as tmp:
        model_dir = Path(tmp) / "model"
        writable_tmp = Path(tmp) / "tmp"
        writable_tmp.mkdir()
        writable_tmp.chmod(0o1777)
        Path(tmp).chmod(0o755)
        train_model(model_dir)

        env = list(cfg.get("Env") or [])
        env += [f"PREDICTOR_HTTP_PORT={http_port}", f"PREDICTOR_GRPC_PORT={grpc_port}"]
        argv = list(cfg.get("Entrypoint") or []) + list(cfg.get("Cmd") or [])
        argv += [
            "--model_name",
            "iris",
            "--http_port",
            str(http_port),
            "--grpc_port",
            str(grpc_port),
        ]
        uid_gid = cfg["User"]
        workdir = cfg.get("WorkingDir") or "/"
        script = r"""
set -eu
R="$1"; TMPH="$2"; MODEL="$3"; USERSPEC="$4"; WD="$5"; shift 5
mount --bind "$R" "$R"
mount -o remount,bind,ro "$R"
mount -t proc proc "$R/proc"
mount --rbind /dev "$R/dev"
mount --bind "$TMPH" "$R/tmp"
mount --bind "$MODEL" "$R/mnt/models"
mount -o remount,bind,ro "$R/mnt/models"
# prove the root is read-only before starting
if chroot "$R" /bin/sh -c 'touch /opt/x' 2>/dev/null; then echo "root is writable" >&2; exit 97; fi
exec chroot --userspec="$USERSPEC" "$R" /bin/sh -c 'cd "$0" && exec "$@"' "$WD" "$@"
"""
        cmd = [
            unshare,
            "--mount",
            "--propagation",
            "private",
            "--",
            "/bin/sh",
            "-c",
            script,
            "sh",
            str(image_root),
            str(writable_tmp),
            str(model_dir),
            uid_gid,
            workdir,
            "/usr/bin/env",
            "-i",
            *env,
            *argv,
        ]
        log_path = Path(tmp) / "server.log"
        t0 = time.monotonic()
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        try:
            base = f"http://127.0.0.1:{http_port}"
            ready_status, ready_body = 0, b""
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    break
                try:
                    ready_status, ready_body = _http("GET", f"{base}/v2/health/ready")
                    if ready_status == 200:
                        break
                except (urllib.error.URLError, ConnectionError, OSError):
                    pass
                time.sleep(0.5)
            TIMINGS["image start -> ready"] = time.monotonic() - t0
            logs = log_path.read_text(errors="replace")[-4000:]
            assert ready_status == 200, f"not ready (exit={proc.poll()}):\n{logs}"
            assert json.loads(ready_body) == {"ready": True}

            body = {
                "inputs": [
                    {
                        "name": "input-0",
                        "shape": [1, 4],
                        "datatype": "FP64",
                        "data": [[5.1, 3.5, 1.4, 0.2]],
                    }
                ]
            }
            status, raw = _http("POST", f"{base}/v2/models/iris/infer", body)
            assert status == 200, raw[:2000]
            out = json.loads(raw)
            assert out["model_name"] == "iris"
            flat = json.dumps(out["outputs"])
            assert "setosa" in flat, out

            # V2 gRPC on the image's gRPC port (tritonclient in its own process).
            grpc_check = (
                "import sys, tritonclient.grpc as g\n"
                "c = g.InferenceServerClient(sys.argv[1])\n"
                "assert c.is_server_live() and c.is_model_ready('iris')\n"
                "print('grpc-ok')\n"
            )
            out_grpc = run_ok([sys.executable, "-c", grpc_check, f"127.0.0.1:{grpc_port}"])
            assert "grpc-ok" in out_grpc

            # The chart's `helm test` pods, REST and gRPC variants, run for real against
            # this server (their scripts, with the host venv's Python standing in for the
            # image's: same kserve / grpc stubs).
            for extra in (
                ["--set", f"tests.url={base}"],
                [
                    "-f",
                    str(REPO / "charts" / "sklearn-predictor" / "examples" / "values-grpc.yaml"),
                    "--set",
                    f"tests.grpcTarget=127.0.0.1:{grpc_port}",
                ],
            ):
                pods = [
                    o
                    for o in docs(helm_template(helm, *extra))
                    if o["kind"] == "Pod"
                    and o["metadata"]["annotations"].get("helm.sh/hook") == "test"
                ]
                assert len(pods) == 2
                for pod in pods:
                    command = pod["spec"]["containers"][0]["command"]
                    assert command[0] == "/opt/venv/bin/python"
                    run_ok([sys.executable, *command[1:]])

            # The Prometheus counter the KEDA overlay scales on.
            status, metrics = _http("GET", f"{base}/metrics")
            assert status == 200
            counter = [
                ln
                for ln in metrics.decode().splitlines()
                if ln.startswith("predictor_requests_total{") and 'model="iris"' in ln
            ]
            assert counter, metrics.decode()[:2000]

            # Nothing was written outside /tmp (root is read-only: the server would
            # have crashed otherwise); the process runs as uid 1000.
            status_txt = Path(f"/proc/{_server_pid(proc.pid)}/status").read_text()
            uid_line = next(ln for ln in status_txt.splitlines() if ln.startswith("Uid:"))
            assert uid_line.split()[1] == "1000", uid_line
        finally:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=30)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


def _server_pid(pid: int) -> int:
    """The unshare/sh/chroot chain exec()s into the server, or forks once (unshare)."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    seen = pid
    for _ in range(4):
        try:
            kids = children.read_text().split()
        except FileNotFoundError:
            break
        if not kids:
            break
        seen = int(kids[0])
        children = Path(f"/proc/{seen}/task/{seen}/children")
    return seen
