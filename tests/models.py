"""Estimators the tests train for themselves (nothing binary is committed)."""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_iris, make_classification, make_regression
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

IRIS_FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
IRIS_CLASSES = ["setosa", "versicolor", "virginica"]
HOUSE_FEATURES = ["area", "bedrooms", "location"]
LOCATIONS = ["north", "south", "east", "west"]


def iris_frame() -> tuple[pd.DataFrame, np.ndarray]:
    data = load_iris()
    frame = pd.DataFrame(data.data, columns=IRIS_FEATURES)
    return frame, np.asarray(IRIS_CLASSES)[data.target]


def lr_pipeline() -> Pipeline:
    """LogisticRegression with string classes in a Pipeline fitted on a DataFrame."""
    frame, labels = iris_frame()
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(frame, labels)


def random_forest() -> RandomForestClassifier:
    """A RandomForest on 6 unnamed features with integer classes 0..2."""
    x, y = make_classification(
        n_samples=400, n_features=6, n_informative=4, n_classes=3, random_state=0
    )
    return RandomForestClassifier(n_estimators=20, random_state=0).fit(x, y)


def ridge() -> Ridge:
    x, y = make_regression(n_samples=200, n_features=3, noise=1.0, random_state=0)
    return Ridge().fit(x, y)


def house_frame(rows: int = 400) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {
            "area": rng.uniform(30, 200, rows),
            "bedrooms": rng.integers(1, 5, rows),
            "location": rng.choice(LOCATIONS, rows),
        }
    )
    price = frame["area"] * 3000 + frame["bedrooms"] * 10000
    return frame, price.to_numpy()


def column_pipeline() -> Pipeline:
    """A ColumnTransformer (scaler + one-hot) before a regressor; mixed FP64/INT64/BYTES."""
    frame, price = house_frame()
    columns = ColumnTransformer(
        [
            ("num", StandardScaler(), ["area", "bedrooms"]),
            ("cat", OneHotEncoder(handle_unknown="error"), ["location"]),
        ]
    )
    return Pipeline([("columns", columns), ("model", Ridge())]).fit(frame, price)


def hist_gradient_boosting() -> HistGradientBoostingClassifier:
    """HistGradientBoosting trained with NaNs (it takes missing values natively)."""
    x, y = make_classification(n_samples=300, n_features=4, random_state=1)
    x[::7, 1] = np.nan
    return HistGradientBoostingClassifier(max_iter=30, random_state=0).fit(x, y)


def write_joblib(model: object, directory: Path, name: str = "model.joblib") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    joblib.dump(model, path)
    return path


def write_house(directory: Path) -> Path:
    """The ColumnTransformer model plus ``sample.csv`` (training dtypes, parity probe)."""
    path = write_joblib(column_pipeline(), directory)
    house_frame(rows=20)[0].to_csv(directory / "sample.csv", index=False)
    return path


def write_pickle(model: object, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "model.pkl"
    path.write_bytes(pickle.dumps(model))
    return path


def write_skops(model: object, directory: Path) -> Path:
    from skops import io as skops_io

    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "model.skops"
    skops_io.dump(model, path)
    return path


def write_digest(path: Path, digest: str | None = None) -> Path:
    digest = digest or hashlib.sha256(path.read_bytes()).hexdigest()
    sidecar = path.with_name(path.name + ".sha256")
    sidecar.write_text(f"{digest}  {path.name}\n")
    return sidecar
