"""Train the bundled example models from data generated here or shipped with scikit-learn.

    python examples/train.py --out examples/models

writes ``iris/model.joblib`` (LogisticRegression on iris with string class names) and
``house/model.joblib`` (house prices from ``area`` float, ``bedrooms`` int and ``location``
string: a Pipeline with one-hot encoding and a regressor), each with a ``.sha256`` beside
it, and ``house/sample.csv`` (example rows whose dtypes the server reports as the
training dtypes). Nothing is downloaded. Existing models are kept unless ``--force``.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_iris
from sklearn.ensemble import GradientBoostingRegressor
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

LOCATIONS = ("north", "south", "east", "west", "centre")


def iris_model() -> Pipeline:
    data = load_iris()
    names = np.asarray(data.target_names)[data.target]  # "setosa", "versicolor", "virginica"
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(data.data, names)


def house_data(rows: int = 2000, seed: int = 7) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    area = rng.uniform(30.0, 250.0, rows).round(1)
    bedrooms = rng.integers(1, 6, rows)
    location = rng.choice(LOCATIONS, rows)
    premium = pd.Series(location).map(
        {"north": 1.0, "south": 0.85, "east": 0.95, "west": 1.1, "centre": 1.4}
    )
    price = (area * 3100 + bedrooms * 12000) * premium.to_numpy() + rng.normal(0, 9000, rows)
    frame = pd.DataFrame({"area": area, "bedrooms": bedrooms, "location": location})
    return frame, price.round(0)


def house_model() -> Pipeline:
    frame, price = house_data()
    columns = ColumnTransformer(
        [
            ("numbers", StandardScaler(), ["area", "bedrooms"]),
            ("location", OneHotEncoder(handle_unknown="error"), ["location"]),
        ]
    )
    return Pipeline(
        [("columns", columns), ("regressor", GradientBoostingRegressor(random_state=0))]
    ).fit(frame, price)


def save(model: object, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    path.with_name(path.name + ".sha256").write_text(f"{digest}  {path.name}\n")
    print(f"wrote {path} (sha256 {digest[:12]})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("examples/models"))
    parser.add_argument("--force", action="store_true", help="retrain even if present")
    args = parser.parse_args()
    for name, build in (("iris", iris_model), ("house", house_model)):
        target = args.out / name / "model.joblib"
        if target.exists() and not args.force:
            print(f"kept {target}")
            continue
        save(build(), target)
        if name == "house":  # example rows: training dtypes for metadata, ONNX parity probe
            house_data(rows=50, seed=11)[0].to_csv(target.parent / "sample.csv", index=False)


if __name__ == "__main__":
    main()
