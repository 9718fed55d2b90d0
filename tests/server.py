"""Start the real predictor (``python -m predictor``) as a subprocess on free ports."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """One predictor process; ``url`` for REST, ``grpc`` for gRPC (host:port)."""

    def __init__(
        self,
        model_dir: Path,
        name: str,
        log_path: Path,
        extra_env: dict[str, str] | None = None,
        extra_args: list[str] | None = None,
        **options: Any,
    ) -> None:
        self.name = name
        self.http_port, self.grpc_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.http_port}"
        self.grpc = f"127.0.0.1:{self.grpc_port}"
        self.log_path = log_path
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREDICTOR_")}
        env.update({f"PREDICTOR_{k.upper()}": str(v) for k, v in options.items()})
        env.update(extra_env or {})
        args = [
            sys.executable,
            "-m",
            "predictor",
            "--model_dir",
            str(model_dir),
            "--model_name",
            name,
            "--http_port",
            str(self.http_port),
            "--grpc_port",
            str(self.grpc_port),
            *(extra_args or []),
        ]
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT
        )

    def wait_ready(self, timeout: float = 180.0) -> Server:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited {self.process.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/v2/health/ready", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"server not ready after {timeout}s:\n{self.log()}")

    def wait_exit(self, timeout: float = 60.0) -> int:
        return self.process.wait(timeout=timeout)

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.post(f"{self.url}{path}", timeout=30, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.get(f"{self.url}{path}", timeout=30, **kwargs)

    def infer(self, body: Any, **kwargs: Any) -> httpx.Response:
        return self.post(f"/v2/models/{self.name}/infer", json=body, **kwargs)


@contextlib.contextmanager
def uvicorn_in_thread(app: Any, protocol: Any, loop: str) -> Iterator[int]:
    """A uvicorn server for ``app`` on HTTP ``protocol`` and event ``loop`` in a thread,
    on a free port (yielded); stopped on exit."""
    import uvicorn

    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=free_port(),
        http=protocol,
        loop=loop,
        log_config=None,
        lifespan="off",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started
    try:
        yield config.port
    finally:
        server.should_exit = True
        thread.join(10)
