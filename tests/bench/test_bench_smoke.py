"""The benchmark harness runs end to end on tiny durations (bench/run.py --smoke).

Starts this predictor, the minimal KServe predictor and the ceiling server (and MLServer
when bench/.venv-mlserver exists; a fresh CI machine has none, so MLServer alone is
skipped there), drives each with wrk and h2load for a second, and checks the JSON, markdown
and chart it writes. It checks that the harness works, not how fast anything is.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUN = ROOT / "bench" / "run.py"
MLSERVER = ROOT / "bench" / ".venv-mlserver" / "bin" / "mlserver"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def test_harness_runs_end_to_end(tmp_path: Path) -> None:
    missing = [t for t in ("wrk", "h2load") if shutil.which(t) is None]
    assert not missing, f"{missing} not installed: `make bench-tools` (run by `make test`)"
    kinds = ["ours", "baseline", "ceiling"]
    if MLSERVER.exists():
        kinds.append("mlserver")
    out = tmp_path / "results"
    proc = subprocess.run(
        [
            sys.executable,
            str(RUN),
            "--smoke",
            "--servers",
            ",".join(kinds),
            "--out",
            str(out),
            "--work",
            str(tmp_path / "work"),
            "--tag",
            "smoke",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=840,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]

    doc = json.loads((out / "smoke.json").read_text())
    assert doc["machine"]["cores"] >= 1
    seen = {(r["kind"], r["model"], r["protocol"], r["concurrency"]) for r in doc["results"]}
    for kind in kinds:
        models = ["rf"] if kind == "ceiling" else ["rf", "lr"]
        for model in models:
            for proto in ("rest", "grpc"):
                for conc in (1, 4):
                    assert (kind, model, proto, conc) in seen, (kind, model, proto, conc)
    for r in doc["results"]:
        assert r["requests"] > 0 and r["rps"] > 0, r
        assert r["non2xx"] == 0, r
        assert r["p50_ms"] > 0 and r["p99_ms"] >= r["p50_ms"], r
        assert r["rss_mb"] > 10, r
    # 1000-row requests: JSON for every server, binary for ours and the baseline
    bulk = {(b["kind"], b["model"], b["encoding"]) for b in doc["bulk"]}
    assert {("ours", "rf", "json"), ("ours", "rf", "binary"), ("baseline", "rf", "json")} <= bulk
    assert all(b["non2xx"] == 0 and b["rows_per_s"] > 0 for b in doc["bulk"])
    assert doc["in_process"]["rf"]["sklearn_predict_rows_s"] > 0

    md = (out / "smoke.md").read_text()
    assert "| rf | rest | 1 |" in md and "Machine:" in md
    assert (out / "smoke.png").stat().st_size > 1000
