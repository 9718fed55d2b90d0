"""Summary, markdown table and PNG chart of a bench/run.py result document."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _rows(doc: dict[str, Any], model: str, proto: str, conc: int) -> list[dict[str, Any]]:
    return [
        r
        for r in doc["results"]
        if r["model"] == model and r["protocol"] == proto and r["concurrency"] == conc
    ]


def _pick(rows: list[dict[str, Any]], kind: str) -> dict[str, Any] | None:
    """The best (highest req/s) measurement of a server kind."""
    cands = [r for r in rows if r["kind"] == kind]
    return max(cands, key=lambda r: r["rps"]) if cands else None


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b <= 0:
        return None
    return a / b


def _paired(
    ours: dict[str, Any] | None, others: list[dict[str, Any]]
) -> tuple[float | None, list[float]]:
    """Median over rounds of ours / best-of-others measured in the same round.

    Servers alternate within a round, so a ratio taken inside one round sees the same
    machine load on both sides; medians of raw req/s across rounds do not.
    """
    if not ours or not others or "rounds" not in ours:
        return None, []
    ratios = []
    for i, mine in enumerate(ours["rounds"]):
        theirs = [o["rounds"][i]["rps"] for o in others if len(o.get("rounds", [])) > i]
        if theirs and max(theirs) > 0:
            ratios.append(mine["rps"] / max(theirs))
    if not ratios:
        return None, []
    ratios.sort()
    return _median(ratios), ratios


def _median(values: list[float]) -> float:
    values = sorted(values)
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


def _bulk_ratio(row: dict[str, Any], ref: float | None) -> float | None:
    """Served / in-process rows/s: the median of per-round ratios where the run measured
    the in-process reference in each round, else against the one reference."""
    rounds = [r for r in row.get("rounds", []) if r.get("in_process_rows_s")]
    if rounds:
        return _median([r["rows_per_s"] / r["in_process_rows_s"] for r in rounds])
    return _ratio(row["rows_per_s"], ref)


def summarize(doc: dict[str, Any]) -> dict[str, Any]:
    table = []
    keys = sorted(
        {(r["model"], r["protocol"], r["concurrency"]) for r in doc["results"]},
        key=lambda k: (k[0] != "rf", k[1] != "rest", k[2]),
    )
    for model, proto, conc in keys:
        rows = _rows(doc, model, proto, conc)
        ours, mls, base = _pick(rows, "ours"), _pick(rows, "mlserver"), _pick(rows, "baseline")
        ceil_rows = _rows(doc, doc["results"][0]["model"], proto, conc)
        ceil = _pick(ceil_rows, "ceiling")
        x_mls, x_mls_rounds = _paired(ours, [r for r in rows if r["kind"] == "mlserver"])
        x_base, x_base_rounds = _paired(ours, [r for r in rows if r["kind"] == "baseline"])
        of_ceil, of_ceil_rounds = _paired(ours, [r for r in ceil_rows if r["kind"] == "ceiling"])
        table.append(
            {
                "model": model,
                "protocol": proto,
                "concurrency": conc,
                "ours": ours,
                "mlserver_best": mls,
                "baseline": base,
                "ceiling": ceil if model == "rf" or ceil is not None else None,
                "x_mlserver": x_mls,
                "x_baseline": x_base,
                "of_ceiling": of_ceil,
                "x_mlserver_rounds": x_mls_rounds,
                "x_baseline_rounds": x_base_rounds,
                "of_ceiling_rounds": of_ceil_rounds,
            }
        )
    bulk = []
    for model, ip in doc.get("in_process", {}).items():
        ref = ip.get("sklearn_predict_rows_s")
        for r in doc.get("bulk", []):
            if r["model"] == model:
                bulk.append(
                    {
                        "model": model,
                        "server": r["server"],
                        "kind": r["kind"],
                        "encoding": r["encoding"],
                        "rows_per_s": r["rows_per_s"],
                        "of_in_process": _bulk_ratio(r, ref),
                        "of_in_process_rounds": [
                            x["rows_per_s"] / x["in_process_rows_s"]
                            for x in r.get("rounds", [])
                            if x.get("in_process_rows_s")
                        ],
                        "non2xx": r["non2xx"],
                    }
                )
    return {"table": table, "bulk": bulk, "targets": targets(table, bulk)}


def _find(table, model, proto, conc):
    for t in table:
        if (t["model"], t["protocol"], t["concurrency"]) == (model, proto, conc):
            return t
    return None


def targets(table: list[dict[str, Any]], bulk: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []

    def add(name: str, value: float | None, goal: float, detail: str, higher: bool = True):
        met = None if value is None else (value >= goal if higher else value <= goal)
        out.append({"target": name, "value": value, "goal": goal, "met": met, "detail": detail})

    def rounds(t: dict[str, Any], key: str) -> str:
        vals = t.get(f"{key}_rounds") or []
        return "per round " + ", ".join(f"{v:.2f}" for v in vals) if vals else ""

    def best(t: dict[str, Any]) -> str:
        mls = t["mlserver_best"]
        return f"best MLServer config {mls['server'] if mls else 'n/a'}; " + rounds(t, "x_mlserver")

    t = _find(table, "rf", "rest", 64)
    if t:
        mls = t["mlserver_best"]
        add("RF 1 row REST c=64 vs MLServer best (req/s)", t["x_mlserver"], 3.0, best(t))
        if t["ours"] and mls:
            add(
                "RF 1 row REST c=64 p99 ours / MLServer best",
                t["ours"]["p99_ms"] / mls["p99_ms"] if mls["p99_ms"] else None,
                1.0,
                "p99 ours <= MLServer's",
                higher=False,
            )
        add(
            "RF 1 row REST c=64 vs minimal KServe predictor",
            t["x_baseline"],
            15.0,
            rounds(t, "x_baseline"),
        )
        add("RF 1 row REST c=64 of the ceiling", t["of_ceiling"], 0.8, rounds(t, "of_ceiling"))
    t = _find(table, "rf", "grpc", 64)
    if t:
        add("RF 1 row gRPC c=64 vs MLServer best (req/s)", t["x_mlserver"], 3.0, best(t))
        add("RF 1 row gRPC c=64 of the ceiling", t["of_ceiling"], 0.8, rounds(t, "of_ceiling"))
    t = _find(table, "lr", "rest", 16)
    if t:
        add("LR 1 row REST c=16 vs MLServer best (req/s)", t["x_mlserver"], 1.5, best(t))
    for b in bulk:
        if b["kind"] == "ours":
            add(
                f"{b['model'].upper()} 1000-row {b['encoding']} served / in-process rows/s",
                b["of_in_process"],
                0.5,
                "in-process: estimator.predict on 1000 rows"
                + (
                    ", measured in each round; per round "
                    + ", ".join(f"{v:.2f}" for v in b["of_in_process_rounds"])
                    if b.get("of_in_process_rounds")
                    else ""
                ),
            )
    return out


def _fmt(v: float | None, spec: str = ".0f") -> str:
    return "-" if v is None else format(v, spec)


def _cell(r: dict[str, Any] | None, name: bool = False) -> str:
    if r is None:
        return "-"
    s = f"{r['rps']:.0f} ({r['p50_ms']:.1f}/{r['p99_ms']:.1f})"
    if r["non2xx"] or r.get("socket_errors"):
        s += f" (!{r['non2xx']}+{r.get('socket_errors', 0)})"
    if name:
        s += f" `{r['server']}`"
    return s


def markdown(doc: dict[str, Any], chart_name: str | None) -> str:
    m = doc["machine"]
    v = m["versions"]
    c = doc["config"]
    sm = doc["summary"]
    lines = [
        f"# Benchmark {doc['date']}",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GiB, Linux {m['kernel']}; "
        f"load average {m['load_average_start']:.2f} at start, {m['load_average_end']:.2f} at end.",
        "Software: " + ", ".join(f"{k} {val}" for k, val in v.items()) + ".",
        f"BLAS: {m['blas']}.",
        f"Load: {c['duration_s']:g} s per measurement after {c['warmup_s']:g} s warm-up, "
        f"median of {c.get('rounds', 1)} round(s); "
        "wrk (REST, V2 JSON) and h2load (gRPC), one load thread, servers alternating; "
        "load generator and server share the 2 cores.",
        "",
        "## One row per request: req/s (p50/p99 ms)",
        "",
        "`ours` is `python -m predictor` in its default configuration; MLServer best is the "
        "fastest of its four configurations for that row (named); the ceiling is this "
        "predictor's stack answering a constant response (sent the rf request body), so it "
        "is the same for rf and lr. req/s and latencies are medians over rounds; the ratios "
        "are medians of ratios taken within each round (servers alternate inside a round, "
        "so both sides of a ratio saw the same machine load). `(!a+b)` marks a non-2xx "
        "responses and b socket errors (timeouts included).",
        "",
        "| model | protocol | c | ours | MLServer best | minimal KServe | ceiling | "
        "x MLServer | x minimal | of ceiling |",
        "|---|---|---:|---|---|---|---|---:|---:|---:|",
    ]
    for t in sm["table"]:
        lines.append(
            f"| {t['model']} | {t['protocol']} | {t['concurrency']} | {_cell(t['ours'])} | "
            f"{_cell(t['mlserver_best'], name=True)} | {_cell(t['baseline'])} | "
            f"{_cell(t['ceiling'])} | {_fmt(t['x_mlserver'], '.2f')} | "
            f"{_fmt(t['x_baseline'], '.1f')} | {_fmt(t['of_ceiling'], '.0%')} |"
        )
    variants = sorted({r["server"] for r in doc["results"] if r["kind"] == "ours-variant"})
    if variants:
        lines += [
            "",
            "## This predictor's fast paths: req/s (p50/p99 ms)",
            "",
            "`ours` is the default (ONNX Runtime engine + adaptive batching); "
            "`ours-sklearn` keeps batching but serves with scikit-learn; "
            "`ours-nobatch` keeps ONNX but turns batching off.",
            "",
            "| model | protocol | c | ours | " + " | ".join(variants) + " |",
            "|---|---|---:|---|" + "---|" * len(variants),
        ]
        for t in sm["table"]:
            by = {r["server"]: r for r in _rows(doc, t["model"], t["protocol"], t["concurrency"])}
            lines.append(
                f"| {t['model']} | {t['protocol']} | {t['concurrency']} | {_cell(t['ours'])} | "
                + " | ".join(_cell(by.get(v)) for v in variants)
                + " |"
            )
    lines += ["", "## 1000 rows per request: rows/s", ""]
    ip = doc.get("in_process", {})
    for model, vals in ip.items():
        eng = vals.get("engine_predict_rows_s")
        lines.append(
            f"- {model}: in-process `estimator.predict` {vals['sklearn_predict_rows_s']:.0f} rows/s"
            + (
                f"; our engine in-process ({vals.get('engine_predict_source')}) {eng:.0f} rows/s"
                if eng
                else ""
            )
        )
    lines += [
        "",
        "| model | server | encoding | rows/s | of in-process | non-2xx |",
        "|---|---|---|---:|---:|---:|",
    ]
    for b in sm["bulk"]:
        lines.append(
            f"| {b['model']} | {b['server']} | {b['encoding']} | {b['rows_per_s']:.0f} | "
            f"{_fmt(b['of_in_process'], '.0%')} | {b['non2xx']} |"
        )
    lines += [
        "",
        "## Targets (issue 3)",
        "",
        "| target | value | goal | met |",
        "|---|---:|---:|---|",
    ]
    for t in sm["targets"]:
        val = _fmt(t["value"], ".2f")
        met = "n/a" if t["met"] is None else ("yes" if t["met"] else "**no**")
        goal = ("<= " if "p99" in t["target"] else ">= ") + f"{t['goal']:g}"
        lines.append(
            f"| {t['target']} {('— ' + t['detail']) if t['detail'] else ''} | {val} | "
            f"{goal} | {met} |"
        )
    lines += [
        "",
        "## Memory (RSS, MiB: idle after load / peak during the run)",
        "",
        "| server | idle | peak |",
        "|---|---:|---:|",
    ]
    for name, idle in doc["idle_rss_mb"].items():
        lines.append(f"| {name} | {idle:.0f} | {doc['peak_rss_mb'].get(name, 0):.0f} |")
    lines += ["", "## MLServer configurations (req/s)", ""]
    mls_names = sorted({r["server"] for r in doc["results"] if r["kind"] == "mlserver"})
    if mls_names:
        lines.append("| model | protocol | c | " + " | ".join(mls_names) + " |")
        lines.append("|---|---|---:|" + "---:|" * len(mls_names))
        for t in sm["table"]:
            rows = _rows(doc, t["model"], t["protocol"], t["concurrency"])
            by = {r["server"]: r for r in rows}
            lines.append(
                f"| {t['model']} | {t['protocol']} | {t['concurrency']} | "
                + " | ".join(_fmt(by[n]["rps"]) if n in by else "-" for n in mls_names)
                + " |"
            )
    if doc.get("notes"):
        lines += ["", "Notes:", ""] + [f"- {n}" for n in doc["notes"]]
    if chart_name:
        lines += ["", f"![req/s by server]({chart_name})"]
    return "\n".join(lines) + "\n"


def chart(doc: dict[str, Any], path: Path) -> bool:
    """Grouped bars of req/s per workload (log scale). False when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    table = doc["summary"]["table"]
    if not table:
        return False
    series = [
        ("ours", "ours"),
        ("mlserver_best", "MLServer (best config)"),
        ("baseline", "minimal KServe predictor"),
        ("ceiling", "ceiling (constant)"),
    ]
    labels = [f"{t['model']}\n{t['protocol']}\nc={t['concurrency']}" for t in table]
    fig, ax = plt.subplots(figsize=(max(8, 0.9 * len(table) + 2), 5))
    width = 0.8 / len(series)
    for i, (key, name) in enumerate(series):
        xs, ys = [], []
        for j, t in enumerate(table):
            if t.get(key):
                xs.append(j + (i - (len(series) - 1) / 2) * width)
                ys.append(t[key]["rps"])
        if xs:
            ax.bar(xs, ys, width, label=name)
    ax.set_xticks(range(len(table)))
    ax.set_xticklabels(labels, fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("requests/s (log)")
    m = doc["machine"]
    ax.set_title(f"One-row requests, {m['cores']} cores ({doc['date'][:10]})")
    ax.legend(fontsize=8)
    ax.grid(axis="y", which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


if __name__ == "__main__":  # re-render: python bench/report.py bench/results/<date>.json
    import json
    import sys

    for name in sys.argv[1:]:
        src = Path(name)
        doc = json.loads(src.read_text())
        doc["summary"] = summarize(doc)
        src.write_text(json.dumps(doc, indent=1))
        png = src.with_suffix(".png")
        drew = chart(doc, png)
        src.with_suffix(".md").write_text(markdown(doc, png.name if drew else None))
        print(f"rendered {src.with_suffix('.md')}" + (f" and {png}" if drew else ""))
