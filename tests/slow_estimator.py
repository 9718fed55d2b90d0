"""An estimator that is slow to unpickle and to predict, for readiness and event-loop tests.

The server imports it from the pickle (PYTHONPATH=tests), as it would a user's own class.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin


class SlowRegressor(RegressorMixin, BaseEstimator):
    """Predicts the row sum after sleeping ``predict_seconds``."""

    def __init__(self, load_seconds: float = 0.0, predict_seconds: float = 0.0) -> None:
        self.load_seconds = load_seconds
        self.predict_seconds = predict_seconds

    def fit(self, x: Any, y: Any = None) -> SlowRegressor:
        self.n_features_in_ = np.asarray(x).shape[1]
        return self

    def predict(self, x: Any) -> np.ndarray:
        time.sleep(self.predict_seconds)
        return np.asarray(x, dtype=float).sum(axis=1)

    def __setstate__(self, state: dict[str, Any]) -> None:
        time.sleep(state.get("load_seconds", 0.0))
        super().__setstate__(state)
