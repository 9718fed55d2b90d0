"""Benchmark models: a 100-tree RandomForest on 20 features and a LogisticRegression on iris.

Each model is written as ``model.joblib`` into a directory per server kind, with whatever
that server needs beside it (MLServer's ``model-settings.json``).
"""

from __future__ import annotations

import json
import pathlib
from dataclasses import dataclass

import joblib
import numpy as np
from sklearn.datasets import load_iris, make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

SEED = 42


@dataclass
class BenchModel:
    name: str
    estimator: object
    x: np.ndarray  # rows to send (float64, 2-D)

    @property
    def n_features(self) -> int:
        return int(self.x.shape[1])


def train() -> dict[str, BenchModel]:
    """Both models, deterministic for a given scikit-learn version."""
    x, y = make_classification(
        n_samples=5000, n_features=20, n_informative=12, n_redundant=4, random_state=SEED
    )
    rf = RandomForestClassifier(n_estimators=100, random_state=SEED, n_jobs=1).fit(x, y)
    iris = load_iris()
    lr = LogisticRegression(max_iter=1000, random_state=SEED).fit(iris.data, iris.target)
    return {
        "rf": BenchModel("rf", rf, x[:1000].astype(np.float64)),
        "lr": BenchModel("lr", lr, np.tile(iris.data, (7, 1))[:1000].astype(np.float64)),
    }


def write_model_dir(model: BenchModel, root: pathlib.Path) -> pathlib.Path:
    """``root/<name>/model.joblib`` (+ MLServer's model-settings.json, ignored by the others)."""
    d = root / model.name
    d.mkdir(parents=True, exist_ok=True)
    joblib.dump(model.estimator, d / "model.joblib")
    return d


def write_mlserver_repo(model: BenchModel, root: pathlib.Path, *, batching: bool) -> pathlib.Path:
    """An MLServer model repository for one model: ``root/<name>/{model.joblib,settings}``."""
    d = root / model.name
    d.mkdir(parents=True, exist_ok=True)
    joblib.dump(model.estimator, d / "model.joblib")
    settings: dict = {
        "name": model.name,
        "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": "./model.joblib", "version": "v1"},
    }
    if batching:
        settings["max_batch_size"] = 64
        settings["max_batch_time"] = 0.005
    (d / "model-settings.json").write_text(json.dumps(settings, indent=2))
    return d
