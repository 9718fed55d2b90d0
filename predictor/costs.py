"""What an engine call costs, measured at load, to decide where it runs.

Handing a call to a worker thread and back costs two thread wake-ups: ~100-300 µs of
latency on the 2-core benchmark VM, more than a one-row ONNX call or a small scikit-learn
``predict`` takes. So a call expected to finish within ``--inline_max_us`` runs on the
event loop itself (the loop is blocked no longer than the hand-off would have cost);
anything slower goes to a worker thread, so the loop keeps answering health checks.

Each method's cost is modelled as ``fixed + per_row * rows`` from timings on a probe
batch at load. A method that is already slower than the budget on the first call is not
timed further (a slow model costs no extra call at load, or one).
"""

from __future__ import annotations

import functools
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

REPEATS = 5
# A call this slow will never run inline; timing it again would only slow the load down.
# (Well above a first call's one-time set-up, which can take milliseconds.)
HOPELESS_US = 20_000.0


@dataclass(frozen=True)
class Cost:
    """``fixed_us + per_row_us * rows`` for one method."""

    fixed_us: float
    per_row_us: float

    def of(self, rows: int) -> float:
        return self.fixed_us + self.per_row_us * rows


@dataclass
class CostModel:
    """Per-method costs and the budget below which a call runs on the event loop."""

    budget_us: float
    costs: dict[str, Cost] = field(default_factory=dict)

    def estimate_us(self, methods: Iterable[str], rows: int) -> float | None:
        """Expected microseconds for ``methods`` on ``rows`` rows (None: not measured)."""
        total = 0.0
        for method in methods:
            cost = self.costs.get(method)
            if cost is None:
                return None
            total += cost.of(rows)
        return total

    def inline(self, methods: Iterable[str], rows: int) -> bool:
        """True when the call is expected to take at most the budget."""
        if self.budget_us <= 0:
            return False
        estimate = self.estimate_us(methods, rows)
        return estimate is not None and estimate <= self.budget_us

    def describe(self) -> str:
        parts = [f"{m}={c.fixed_us:.0f}+{c.per_row_us:.1f}/row us" for m, c in self.costs.items()]
        return ", ".join(parts) or "not measured"


def _median_us(call: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1e6)
    return statistics.median(times)


def measure(
    run: Callable[[str, Any], Any],
    methods: Iterable[str],
    small: Any,
    large: Any,
    budget_us: float,
    first_us: dict[str, float] | None = None,
) -> CostModel:
    """Time each method on ``small`` and ``large`` row batches and fit the linear cost.

    Args:
        run: ``run(method, X)``, the engine call to time.
        methods: Methods to time.
        small: A batch of a few rows.
        large: A batch of ``max_batch_size`` rows (more rows than ``small``).
        budget_us: The inline budget.
        first_us: Times of a first call already made (on the probe) per method; a
            method over ``HOPELESS_US`` there is not called again.

    Returns:
        A ``CostModel``; methods that failed or are over budget have no ``Cost`` (so
        they never run inline).
    """
    model = CostModel(budget_us)
    if budget_us <= 0:
        return model
    n_small, n_large = len(small), len(large)
    for method in methods:
        if (first_us or {}).get(method, 0.0) > HOPELESS_US:
            continue
        try:
            warm = _median_us(functools.partial(run, method, small), 1)
            if warm > HOPELESS_US:
                continue
            t_small = _median_us(functools.partial(run, method, small), REPEATS)
            if t_small > budget_us:
                continue
            t_large = _median_us(functools.partial(run, method, large), REPEATS)
        except Exception:  # a probe the method refuses: leave it to worker threads
            continue
        per_row = max(0.0, (t_large - t_small) / max(1, n_large - n_small))
        fixed = max(0.0, t_small - per_row * n_small)
        model.costs[method] = Cost(fixed, per_row)
    return model
