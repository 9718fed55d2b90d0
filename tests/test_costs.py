"""Load-time cost model: which engine calls run on the event loop."""

from __future__ import annotations

import time

import numpy as np

from predictor.costs import Cost, CostModel, measure


def busy(us: float) -> None:
    end = time.perf_counter() + us / 1e6
    while time.perf_counter() < end:
        pass


class Engine:
    """``fast``: ~20 µs + 1 µs/row; ``slow``: 25 ms a call; ``broken`` raises."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}

    def __call__(self, method: str, x: np.ndarray) -> np.ndarray:
        self.calls[method] = self.calls.get(method, 0) + 1
        if method == "broken":
            raise ValueError("no")
        busy(25_000 if method == "slow" else 20 + len(x))
        return np.zeros(len(x))


def test_fast_methods_get_a_linear_cost_and_run_inline_within_budget():
    engine = Engine()
    model = measure(engine, ["fast"], np.zeros((2, 3)), np.zeros((200, 3)), budget_us=300)
    cost = model.costs["fast"]
    assert 5 <= cost.fixed_us <= 1000, cost  # loose: a busy CI machine preempts
    assert 0.3 <= cost.per_row_us <= 10, cost
    assert model.inline(["fast"], 1)
    assert not model.inline(["fast"], 5000)  # thousands of rows: over the budget
    assert "fast=" in model.describe()


def test_slow_and_failing_methods_never_run_inline_and_slow_ones_are_timed_once():
    engine = Engine()
    model = measure(engine, ["slow", "broken"], np.zeros((2, 3)), np.zeros((64, 3)), budget_us=300)
    assert model.costs == {}
    assert not model.inline(["slow"], 1) and not model.inline(["broken"], 1)
    assert engine.calls["slow"] == 1  # hopeless on the first call: no more calls


def test_a_method_already_known_to_be_slow_is_not_called_again():
    engine = Engine()
    model = measure(
        engine, ["slow"], np.zeros((2, 3)), np.zeros((64, 3)), 300, first_us={"slow": 25_000.0}
    )
    assert model.costs == {} and engine.calls == {}


def test_budget_zero_means_never_inline():
    engine = Engine()
    model = measure(engine, ["fast"], np.zeros((2, 3)), np.zeros((64, 3)), budget_us=0)
    assert engine.calls == {} and not model.inline(["fast"], 1)


def test_several_methods_add_up_and_an_unmeasured_one_forbids_inline():
    model = CostModel(100, {"a": Cost(30, 1), "b": Cost(20, 1)})
    assert model.estimate_us(["a", "b"], 10) == 70
    assert model.inline(["a", "b"], 10) and not model.inline(["a", "b"], 30)
    assert model.estimate_us(["a", "c"], 1) is None and not model.inline(["a", "c"], 1)


def test_a_slow_first_call_alone_does_not_rule_a_method_out():
    engine = Engine()  # a first call's one-time set-up made it look slow: time it again
    model = measure(
        engine, ["fast"], np.zeros((2, 3)), np.zeros((64, 3)), 300, first_us={"fast": 5000.0}
    )
    assert model.inline(["fast"], 1)
