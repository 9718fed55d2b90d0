"""Side-by-side benchmark: this predictor vs MLServer vs the minimal KServe predictor.

    .venv/bin/python bench/run.py                 # the full run (``make bench``)
    .venv/bin/python bench/run.py --smoke         # seconds per server: checks the harness

Trains the benchmark models (bench/models.py), starts every server on free loopback ports,
and drives them with ``wrk`` (REST, V2 JSON) and ``h2load`` (gRPC, length-prefixed
``ModelInferRequest``), the servers alternating within each workload. Writes
``<out>/<date>.json``, ``<out>/<date>.md`` and ``<out>/<date>.png``.

Servers:
  ours       ``python -m predictor`` in its default configuration
  baseline   bench/baseline_predictor.py (the KServe docs' minimal custom predictor)
  mlserver-* MLServer + mlserver-sklearn from bench/.venv-mlserver, in four configurations
             (parallel_workers 0/1 x adaptive batching 64 rows / 5 ms on/off)
  ceiling    bench/ceiling_server.py (our stack answering a constant response)

All traffic goes to 127.0.0.1 only; every load run is bounded by ``--duration``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

import models as bench_models  # noqa: E402
import report  # noqa: E402

PY = Path(sys.executable)
MLSERVER_VENV = BENCH / ".venv-mlserver"
GRPC_PATH = "/inference.GRPCInferenceService/ModelInfer"
HOST = "127.0.0.1"
# this predictor: its default configuration, and variants that show what each fast path buys
OURS_VARIANTS: dict[str, dict[str, str]] = {
    "ours": {},
    "ours-sklearn": {"PREDICTOR_ENGINE": "sklearn"},  # batching on, scikit-learn engine
    "ours-nobatch": {"PREDICTOR_BATCHING": "false"},  # ONNX engine, no batching
}
MLSERVER_CONFIGS = {
    # name: (parallel_workers, adaptive batching)
    "mlserver-pw0": (0, False),
    "mlserver-pw0-batch": (0, True),
    "mlserver-pw1": (1, False),
    "mlserver-pw1-batch": (1, True),
}


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


# ------------------------------------------------------------------------- servers


@dataclass
class Server:
    name: str  # e.g. "ours", "mlserver-pw1-batch"
    kind: str  # ours | baseline | mlserver | ceiling
    models: list[str]  # model names it serves
    cmd: list[str]
    cwd: Path
    env: dict[str, str]
    http_port: int
    grpc_port: int
    log_path: Path
    proc: subprocess.Popen | None = None
    rss_mb: float = 0.0
    notes: list[str] = field(default_factory=list)

    def url(self, model: str) -> str:
        return f"http://{HOST}:{self.http_port}/v2/models/{model}/infer"

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        out = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            self.cmd,
            cwd=self.cwd,
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped as a whole below
        )

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        pending = list(self.models)
        while pending:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.proc.returncode}; see {self.log_path}"
                )
            model = pending[0]
            url = f"http://{HOST}:{self.http_port}/v2/models/{model}/ready"
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    if r.status == 200:
                        pending.pop(0)
                        continue
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{self.name} not ready after {timeout:.0f}s; see {self.log_path}"
                )
            time.sleep(0.3)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)

    def measure_rss(self) -> float:
        """Resident memory of the server and all its descendants, in MiB."""
        if self.proc is None:
            return 0.0
        total = 0
        for pid in _descendants(self.proc.pid):
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        mb = total / 1024
        self.rss_mb = max(self.rss_mb, mb)
        return mb


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            text = stat.read_text()
            ppid = int(text.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(stat.parent.name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def server_env() -> dict[str, str]:
    env = dict(os.environ)
    # Older OpenBLAS builds need these on some CPUs; they slow a current numpy down. The
    # harness drops both together for the processes it measures (README of the machine).
    env.pop("OPENBLAS_CORETYPE", None)
    env.pop("OPENBLAS_L2_SIZE", None)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def make_servers(
    work: Path, model_dirs: dict[str, Path], wanted: list[str], mlserver_configs: list[str]
) -> list[Server]:
    servers: list[Server] = []
    env = server_env()
    logs = work / "logs"
    for model, d in model_dirs.items():
        for variant, extra_env in OURS_VARIANTS.items():
            if variant not in wanted:
                continue
            hp, gp = free_port(), free_port()
            servers.append(
                Server(
                    f"{variant}:{model}",
                    "ours" if variant == "ours" else "ours-variant",
                    [model],
                    [
                        str(PY),
                        "-m",
                        "predictor",
                        "--model_dir",
                        str(d),
                        "--model_name",
                        model,
                        "--http_port",
                        str(hp),
                        "--grpc_port",
                        str(gp),
                    ],
                    ROOT,
                    {**env, **extra_env},
                    hp,
                    gp,
                    logs / f"{variant}-{model}.log",
                )
            )
        if "baseline" in wanted:
            hp, gp = free_port(), free_port()
            servers.append(
                Server(
                    f"baseline:{model}",
                    "baseline",
                    [model],
                    [
                        str(PY),
                        str(BENCH / "baseline_predictor.py"),
                        "--model_dir",
                        str(d),
                        "--model_name",
                        model,
                        "--http_port",
                        str(hp),
                        "--grpc_port",
                        str(gp),
                    ],
                    ROOT,
                    env,
                    hp,
                    gp,
                    logs / f"baseline-{model}.log",
                )
            )
    if "ceiling" in wanted:
        hp, gp = free_port(), free_port()
        names = list(model_dirs)
        servers.append(
            Server(
                "ceiling",
                "ceiling",
                names[:1],
                [
                    str(PY),
                    str(BENCH / "ceiling_server.py"),
                    "--model_name",
                    names[0],
                    "--http_port",
                    str(hp),
                    "--grpc_port",
                    str(gp),
                    "--features",  # the decoders check the width the bench requests have
                    str(MODELS[names[0]].x.shape[1]),
                ],
                ROOT,
                env,
                hp,
                gp,
                logs / "ceiling.log",
            )
        )
    if "mlserver" in wanted:
        mlserver = MLSERVER_VENV / "bin" / "mlserver"
        for cfg in mlserver_configs:
            workers, batching = MLSERVER_CONFIGS[cfg]
            repo = work / "mlserver" / cfg
            repo.mkdir(parents=True, exist_ok=True)
            for model in model_dirs:
                bench_models.write_mlserver_repo(MODELS[model], repo, batching=batching)
            hp, gp, mp = free_port(), free_port(), free_port()
            settings = {
                "http_port": hp,
                "grpc_port": gp,
                "metrics_port": mp,
                "host": HOST,
                "parallel_workers": workers,
                "debug": False,
                "metrics_dir": str(repo / ".metrics"),
            }
            (repo / "settings.json").write_text(json.dumps(settings, indent=2))
            menv = dict(env)
            menv["PATH"] = f"{MLSERVER_VENV / 'bin'}:{env.get('PATH', '')}"
            menv.pop("VIRTUAL_ENV", None)
            servers.append(
                Server(
                    cfg,
                    "mlserver",
                    list(model_dirs),
                    [str(mlserver), "start", str(repo)],
                    repo,
                    menv,
                    hp,
                    gp,
                    logs / f"{cfg}.log",
                )
            )
    return servers


# ------------------------------------------------------------------------- bodies

MODELS: dict[str, bench_models.BenchModel] = {}


def v2_json(model: str, x: np.ndarray) -> bytes:
    doc = {
        "inputs": [
            {
                "name": "input-0",
                "shape": list(x.shape),
                "datatype": "FP64",
                "data": x.ravel().tolist(),
            }
        ]
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def v2_binary(model: str, x: np.ndarray, output: str | None) -> tuple[bytes, int]:
    raw = np.ascontiguousarray(x, dtype="<f8").tobytes()
    doc: dict[str, Any] = {
        "inputs": [
            {
                "name": "input-0",
                "shape": list(x.shape),
                "datatype": "FP64",
                "parameters": {"binary_data_size": len(raw)},
            }
        ]
    }
    if output:
        doc["outputs"] = [{"name": output, "parameters": {"binary_data": True}}]
    head = json.dumps(doc, separators=(",", ":")).encode()
    return head + raw, len(head)


def grpc_body(model: str, x: np.ndarray) -> bytes:
    from tritonclient.grpc import service_pb2 as pb  # same inference.* messages

    req = pb.ModelInferRequest(model_name=model)
    t = req.inputs.add()
    t.name = "input-0"
    t.datatype = "FP64"
    t.shape.extend(x.shape)
    t.contents.fp64_contents.extend(x.ravel().tolist())
    msg = req.SerializeToString()
    return b"\x00" + struct.pack(">I", len(msg)) + msg  # gRPC length-prefixed message


def check_rest(url: str, body: bytes, header_length: int | None = None) -> None:
    headers = {"Content-Type": "application/json"}
    if header_length is not None:
        headers = {
            "Content-Type": "application/octet-stream",
            "Inference-Header-Content-Length": str(header_length),
        }
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
    with urllib.request.urlopen(req, timeout=30) as r:
        payload = r.read()
        if r.status != 200:
            raise RuntimeError(f"{url}: HTTP {r.status}")
    length = r.headers.get("Inference-Header-Content-Length")
    doc = json.loads(payload[: int(length)] if length else payload)
    if not doc.get("outputs"):
        raise RuntimeError(f"{url}: no outputs in {doc}")


def check_grpc(port: int, body: bytes) -> None:
    """One real call: h2load sees HTTP/2 status only, not grpc-status."""
    import grpc
    from tritonclient.grpc import service_pb2 as pb  # same inference.* messages

    with grpc.insecure_channel(f"{HOST}:{port}") as ch:
        call = ch.unary_unary(
            GRPC_PATH,
            request_serializer=lambda b: b,
            response_deserializer=pb.ModelInferResponse.FromString,
        )
        resp = call(body[5:], timeout=30)
        if not resp.outputs:
            raise RuntimeError(f"gRPC :{port}: no outputs")


# ------------------------------------------------------------------------- load


def run_wrk(
    url: str, body_file: Path, conc: int, duration: float, header_length: int | None = None
) -> dict[str, Any]:
    env = dict(os.environ, BODY_FILE=str(body_file))
    if header_length is not None:
        env["HEADER_LENGTH"] = str(header_length)
    cmd = [
        "wrk",
        "-t1",
        f"-c{conc}",
        f"-d{max(1, round(duration))}s",
        "--latency",
        "--timeout",
        "10s",
        "-s",
        str(BENCH / "wrk_v2.lua"),
        url,
    ]
    out = subprocess.run(
        cmd, env=env, capture_output=True, text=True, timeout=duration + 60, check=False
    )
    m = re.search(r"WRKJSON (\{.*\})", out.stdout)
    if not m:
        raise RuntimeError(f"wrk failed: {out.stdout}\n{out.stderr}")
    r = json.loads(m.group(1))
    secs = r["duration_us"] / 1e6
    socket_errors = r["connect_errors"] + r["read_errors"] + r["write_errors"] + r["timeouts"]
    return {
        "rps": r["requests"] / secs if secs else 0.0,
        "requests": r["requests"],
        "p50_ms": r["p50_us"] / 1000,
        "p99_ms": r["p99_us"] / 1000,
        "non2xx": r["status_errors"],
        "socket_errors": socket_errors,
    }


def run_h2load(port: int, body_file: Path, conc: int, duration: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        log_file = Path(tmp) / "h2load.log"
        cmd = [
            "h2load",
            "-c",
            str(conc),
            "-m",
            "1",
            "-t",
            "1",
            "-D",
            str(max(1, round(duration))),
            "-H",
            "content-type: application/grpc",
            "-H",
            "te: trailers",
            "-d",
            str(body_file),
            "--log-file",
            str(log_file),
            f"http://{HOST}:{port}{GRPC_PATH}",
        ]
        out = subprocess.run(
            cmd, capture_output=True, text=True, timeout=duration + 60, check=False
        )
        text = out.stdout
        m = re.search(r"finished in ([\d.]+)(m?s), ([\d.]+) req/s", text)
        st = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", text)
        rq = re.search(
            r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, "
            r"(\d+) errored, (\d+) timeout",
            text,
        )
        if not (m and st and rq):
            raise RuntimeError(f"h2load failed: {text}\n{out.stderr}")
        lat = []
        with contextlib.suppress(OSError):
            for line in log_file.read_text().splitlines():
                parts = line.split()
                if len(parts) >= 3 and parts[1].isdigit():
                    lat.append(int(parts[2]))
    done = int(rq.group(3))
    secs = float(m.group(1)) / (1000 if m.group(2) == "ms" else 1)
    lat.sort()
    return {
        "rps": (int(st.group(1)) / secs) if secs else 0.0,
        "requests": done,
        "p50_ms": _pct(lat, 50) / 1000,
        "p99_ms": _pct(lat, 99) / 1000,
        "non2xx": done - int(st.group(1)),
        "socket_errors": int(rq.group(6)) + int(rq.group(7)),
    }


def _pct(sorted_values: list[int], p: float) -> float:
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, round(p / 100 * len(sorted_values)) - 1))
    return float(sorted_values[k])


# ------------------------------------------------------------------------- run


def median_dicts(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Per key, the median of the numeric values over rounds (others from the first)."""
    out: dict[str, Any] = dict(rounds[0])
    for key, value in rounds[0].items():
        if isinstance(value, int | float):
            out[key] = statistics.median(r[key] for r in rounds)
    out["rounds"] = rounds
    return out


def aggregate_bulk(raw: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (model, server, encoding): medians over rounds, rounds kept."""
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for r in raw:
        groups.setdefault((r["model"], r["server"], r["encoding"]), []).append(r)
    out = []
    for rows in groups.values():
        row = median_dicts(rows)
        row["non2xx"] = sum(r["non2xx"] for r in rows)
        row["socket_errors"] = sum(r.get("socket_errors", 0) for r in rows)
        row.pop("round", None)
        row["rounds"] = [
            {"rows_per_s": r["rows_per_s"], "in_process_rows_s": r["in_process_rows_s"]}
            for r in rows
        ]
        out.append(row)
    return sorted(out, key=lambda r: (r["model"] != "rf", r["server"], r["encoding"] != "json"))


def aggregate(raw: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (model, protocol, concurrency, server): medians over rounds, sums of errors."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in raw:
        groups.setdefault((r["model"], r["protocol"], r["concurrency"], r["server"]), []).append(r)
    out = []
    for rows in groups.values():
        first = rows[0]
        agg = {k: first[k] for k in ("model", "protocol", "concurrency", "server", "kind")}
        for k in ("rps", "p50_ms", "p99_ms"):
            agg[k] = float(np.median([r[k] for r in rows]))
        for k in ("requests", "non2xx", "socket_errors"):
            agg[k] = int(sum(r[k] for r in rows))
        agg["rss_mb"] = max(r["rss_mb"] for r in rows)
        agg["rounds"] = [
            {k: r[k] for k in ("rps", "p50_ms", "p99_ms", "loadavg_before")} for r in rows
        ]
        out.append(agg)
    return out


def machine_info() -> dict[str, Any]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_gb = 0.0
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_gb = int(line.split()[1]) / 1024 / 1024
    versions: dict[str, str] = {"python": platform.python_version()}
    for pkg in ("kserve", "scikit-learn", "numpy", "onnxruntime", "skl2onnx"):
        with contextlib.suppress(Exception):
            from importlib.metadata import version

            versions[pkg] = version(pkg)
    mls = MLSERVER_VENV / "bin" / "python"
    if mls.exists():
        out = subprocess.run(
            [
                str(mls),
                "-c",
                "from importlib.metadata import version as v;"
                "print(v('mlserver'), v('mlserver-sklearn'), v('scikit-learn'))",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if out.returncode == 0:
            a, b, c = out.stdout.split()
            versions.update({"mlserver": a, "mlserver-sklearn": b, "mlserver scikit-learn": c})
    for tool in ("wrk", "h2load"):
        with contextlib.suppress(Exception):
            out = subprocess.run([tool, "--version"], capture_output=True, text=True, check=False)
            first = (out.stdout or out.stderr).strip().splitlines()
            versions[tool] = first[0] if first else "?"
    blas = "unknown"
    with contextlib.suppress(Exception):
        from threadpoolctl import threadpool_info

        blas = ", ".join(
            f"{i.get('internal_api')} {i.get('architecture', '')} x{i.get('num_threads')}"
            for i in threadpool_info()
        )
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(mem_gb, 1),
        "kernel": platform.release(),
        "versions": versions,
        "blas": blas,
        "openblas_env_dropped": any(
            k in os.environ for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
        ),
        "load_average_start": os.getloadavg()[0],
    }


def in_process(model: bench_models.BenchModel, seconds: float) -> dict[str, float]:
    """Rows/s of estimator.predict on 1000 rows in this process (and of our engine)."""
    out: dict[str, float] = {}
    x = model.x[:1000]

    def rate(fn) -> float:
        fn(x)
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds or n < 3:
            fn(x)
            n += 1
        return n * len(x) / (time.perf_counter() - t0)

    out["sklearn_predict_rows_s"] = rate(model.estimator.predict)
    with contextlib.suppress(Exception):
        sys.path.insert(0, str(ROOT))
        from predictor.engine import build_engine

        engine = build_engine(model.estimator)
        out["engine_predict_rows_s"] = rate(lambda v: engine.run("predict", v))
        out["engine_predict_source"] = engine.methods()["predict"]  # type: ignore[assignment]
    return out


def rotations(items: list[Server], i: int) -> list[Server]:
    if not items:
        return items
    k = i % len(items)
    return items[k:] + items[:k]


def measure(
    server: Server,
    proto: str,
    model: str,
    conc: int,
    duration: float,
    files: dict[str, Path],
    warmup: float,
) -> dict[str, Any]:
    if proto == "rest":
        url = server.url(model)
        if warmup > 0:
            run_wrk(url, files["rest"], conc, warmup)
        r = run_wrk(url, files["rest"], conc, duration)
    else:
        if warmup > 0:
            run_h2load(server.grpc_port, files["grpc"], conc, warmup)
        r = run_h2load(server.grpc_port, files["grpc"], conc, duration)
    r["rss_mb"] = round(server.measure_rss(), 1)
    return r


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per measurement")
    ap.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up per measurement")
    ap.add_argument("--concurrency", default="1,16,64")
    ap.add_argument(
        "--servers",
        default="ours,baseline,mlserver,ceiling",
        help="any of ours, ours-sklearn, ours-nobatch, baseline, mlserver, ceiling",
    )
    ap.add_argument("--rounds", type=int, default=1, help="repeat the one-row runs; medians")
    ap.add_argument("--mlserver-configs", default=",".join(MLSERVER_CONFIGS))
    ap.add_argument("--models", default="rf,lr")
    ap.add_argument("--protocols", default="rest,grpc")
    ap.add_argument(
        "--bulk-duration",
        type=float,
        default=None,
        help="seconds per 1000-row measurement (default: --duration)",
    )
    ap.add_argument("--bulk-concurrency", type=int, default=2)
    ap.add_argument("--out", type=Path, default=BENCH / "results")
    ap.add_argument("--work", type=Path, default=BENCH / "work")
    ap.add_argument("--tag", default=None, help="file name stem (default: UTC date-time)")
    ap.add_argument(
        "--smoke",
        action="store_true",
        help="1 s per measurement, c=1,4, one MLServer config: checks the harness",
    )
    args = ap.parse_args(argv)

    if args.smoke:
        args.duration, args.warmup, args.concurrency = 1.0, 0.0, "1,4"
        if args.mlserver_configs == ",".join(MLSERVER_CONFIGS):
            args.mlserver_configs = "mlserver-pw0"
    wanted = [s.strip() for s in args.servers.split(",") if s.strip()]
    conc_levels = [int(c) for c in args.concurrency.split(",")]
    protocols = [p.strip() for p in args.protocols.split(",") if p.strip()]
    model_names = [m.strip() for m in args.models.split(",") if m.strip()]
    bulk_duration = args.bulk_duration or args.duration
    notes: list[str] = []

    for tool in ("wrk", "h2load"):
        if shutil.which(tool) is None:
            print(
                f"{tool} not found: `make bench-tools` installs wrk and nghttp2-client",
                file=sys.stderr,
            )
            return 2
    if "mlserver" in wanted and not (MLSERVER_VENV / "bin" / "mlserver").exists():
        notes.append("MLServer skipped: bench/.venv-mlserver is absent (`make bench-mlserver`)")
        log(notes[-1])
        wanted.remove("mlserver")

    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    log("training models")
    MODELS.update({k: v for k, v in bench_models.train().items() if k in model_names})
    model_dirs = {m: bench_models.write_model_dir(MODELS[m], work / "models") for m in MODELS}
    bodies = work / "bodies"
    bodies.mkdir(exist_ok=True)
    files: dict[str, dict[str, Path]] = {}
    for m, bm in MODELS.items():
        one = bm.x[:1]
        files[m] = {
            "rest": bodies / f"{m}-1.json",
            "grpc": bodies / f"{m}-1.grpc",
            "bulk_json": bodies / f"{m}-1000.json",
            "bulk_bin": bodies / f"{m}-1000.bin",
        }
        files[m]["rest"].write_bytes(v2_json(m, one))
        files[m]["grpc"].write_bytes(grpc_body(m, one))
        files[m]["bulk_json"].write_bytes(v2_json(m, bm.x[:1000]))

    mls_cfgs = [c for c in args.mlserver_configs.split(",") if c]
    servers = make_servers(work, model_dirs, wanted, mls_cfgs)
    machine = machine_info()
    started = time.time()
    results: list[dict[str, Any]] = []
    bulk: list[dict[str, Any]] = []
    inproc: dict[str, dict[str, float]] = {}
    try:
        log(f"starting {len(servers)} servers")
        for s in servers:
            s.start()
        for s in servers:
            s.wait_ready(timeout=240)
            s.measure_rss()
        log("all servers ready")
        # correctness pre-checks (one request each, REST and gRPC)
        for s in servers:
            for m in s.models:
                check_rest(s.url(m), files[m]["rest"].read_bytes())
                if "grpc" in protocols:
                    check_grpc(s.grpc_port, files[m]["grpc"].read_bytes())
        idle_rss = {s.name: round(s.measure_rss(), 1) for s in servers}

        round_no = 0
        raw: list[dict[str, Any]] = []
        for rnd in range(args.rounds):
            for m in model_names:
                for proto in protocols:
                    for conc in conc_levels:
                        group = [s for s in servers if m in s.models]
                        for s in rotations(group, round_no):
                            load = os.getloadavg()[0]
                            r = measure(s, proto, m, conc, args.duration, files[m], args.warmup)
                            row = {
                                "model": m,
                                "protocol": proto,
                                "concurrency": conc,
                                "server": s.name.split(":")[0],
                                "kind": s.kind,
                                "round": rnd,
                                "loadavg_before": round(load, 2),
                                **r,
                            }
                            raw.append(row)
                            log(
                                f"r{rnd} {m} {proto} c={conc} {row['server']}: "
                                f"{r['rps']:.0f} req/s p50 {r['p50_ms']:.2f} ms "
                                f"p99 {r['p99_ms']:.2f} ms non2xx {r['non2xx']} "
                                f"rss {r['rss_mb']} MB load {load:.1f}"
                            )
                        round_no += 1
        results.extend(aggregate(raw))

        # 1000-row requests: served rows/s vs in-process predict rows/s, in rounds; the
        # in-process reference is measured again in each round, so a round's ratio sees
        # one machine state on both sides
        bulk_raw: list[dict[str, Any]] = []
        inproc_rounds: dict[str, list[dict[str, float]]] = {m: [] for m in model_names}
        bin_bodies: dict[tuple[str, str], tuple[Path, int | None]] = {}
        for rnd in range(args.rounds):
            for m in model_names:
                ip = in_process(MODELS[m], max(1.0, min(5.0, bulk_duration)))
                inproc_rounds[m].append(ip)
                log(f"r{rnd} {m} in-process 1000 rows: {ip}")
                group = [s for s in servers if m in s.models and s.kind != "ceiling"]
                for s in rotations(group, round_no):
                    variants = [("json", files[m]["bulk_json"], None)]
                    if s.kind in ("ours", "ours-variant", "baseline"):  # binary extension
                        if (s.name, m) not in bin_bodies:
                            output = "predict" if s.kind.startswith("ours") else None
                            body, hl = v2_binary(m, MODELS[m].x[:1000], output)
                            path = bodies / f"{m}-1000-{s.name.split(':')[0]}.bin"
                            path.write_bytes(body)
                            check_rest(s.url(m), body, hl)
                            bin_bodies[(s.name, m)] = (path, hl)
                        variants.append(("binary", *bin_bodies[(s.name, m)]))
                    for enc, path, hl in variants:
                        if args.warmup > 0:
                            run_wrk(s.url(m), path, args.bulk_concurrency, args.warmup, hl)
                        r = run_wrk(s.url(m), path, args.bulk_concurrency, bulk_duration, hl)
                        r["rss_mb"] = round(s.measure_rss(), 1)
                        bulk_raw.append(
                            {
                                "model": m,
                                "encoding": enc,
                                "server": s.name.split(":")[0],
                                "kind": s.kind,
                                "round": rnd,
                                "concurrency": args.bulk_concurrency,
                                "rows_per_s": r["rps"] * 1000,
                                "in_process_rows_s": ip["sklearn_predict_rows_s"],
                                **r,
                            }
                        )
                        log(
                            f"r{rnd} {m} 1000-row {enc} {bulk_raw[-1]['server']}: "
                            f"{r['rps'] * 1000:.0f} rows/s non2xx {r['non2xx']}"
                        )
                round_no += 1
        bulk.extend(aggregate_bulk(bulk_raw))
        inproc.update({m: median_dicts(v) for m, v in inproc_rounds.items() if v})
    finally:
        for s in servers:
            s.stop()

    stamp = args.tag or dt.datetime.now(dt.UTC).strftime("%Y-%m-%d-%H%M")
    machine["load_average_end"] = os.getloadavg()[0]
    doc = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine,
        "config": {
            "duration_s": args.duration,
            "rounds": args.rounds,
            "warmup_s": args.warmup,
            "concurrency": conc_levels,
            "protocols": protocols,
            "bulk_concurrency": args.bulk_concurrency,
            "bulk_duration_s": bulk_duration,
            "servers": [
                {"name": s.name, "kind": s.kind, "cmd": " ".join(s.cmd[1:])} for s in servers
            ],
            "smoke": args.smoke,
            "wall_s": round(time.time() - started, 1),
        },
        "notes": [
            *notes,
            "gRPC: h2load counts HTTP/2 statuses only; each server answered one real "
            "ModelInfer with grpc-status OK before its runs",
        ],
        "idle_rss_mb": idle_rss,
        "peak_rss_mb": {s.name: round(s.rss_mb, 1) for s in servers},
        "results": results,
        "bulk": bulk,
        "in_process": inproc,
    }
    doc["summary"] = report.summarize(doc)
    args.out.mkdir(parents=True, exist_ok=True)
    json_path = args.out / f"{stamp}.json"
    json_path.write_text(json.dumps(doc, indent=1))
    md_path = args.out / f"{stamp}.md"
    png_path = args.out / f"{stamp}.png"
    chart = report.chart(doc, png_path)
    md_path.write_text(report.markdown(doc, png_path.name if chart else None))
    log(f"wrote {json_path}, {md_path}" + (f", {png_path}" if chart else " (no chart)"))
    failures = sum(r["non2xx"] for r in results + bulk)
    if failures:
        log(f"{failures} non-2xx responses during the run")
    return 0


if __name__ == "__main__":
    sys.exit(main())
