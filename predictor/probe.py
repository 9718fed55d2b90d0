"""Probe rows for the parity check, and the parity rule itself.

Probe rows come from the model (tree thresholds, stored training statistics) and from a
user's ``sample.csv``; :func:`parity` compares the scikit-learn and ONNX Runtime outputs
on them (the rule is stated in :mod:`predictor.engine`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

RTOL = 1e-4
ATOL = 1e-5
PROBE_ROWS = 256


def n_features_of(estimator: Any) -> int | None:
    n = getattr(estimator, "n_features_in_", None)
    if n is None and hasattr(estimator, "steps"):
        n = getattr(estimator.steps[0][1], "n_features_in_", None)
    return int(n) if n is not None else None


def _first_step(estimator: Any) -> Any:
    while hasattr(estimator, "steps"):
        estimator = estimator.steps[0][1]
    return estimator


def _tree_thresholds(estimator: Any, n_features: int) -> list[np.ndarray] | None:
    trees = []
    if hasattr(estimator, "tree_"):
        trees = [estimator.tree_]
    elif hasattr(estimator, "estimators_"):
        ests = np.asarray(estimator.estimators_, dtype=object).ravel()
        trees = [t.tree_ for t in ests if hasattr(t, "tree_")]
    if not trees:
        return None
    per: list[list[np.ndarray]] = [[] for _ in range(n_features)]
    for t in trees:
        internal = t.feature >= 0
        for f, thr in zip(t.feature[internal], t.threshold[internal], strict=True):
            per[int(f)].append(thr)
    return [np.asarray(p, dtype=np.float64) for p in per]


def make_probe(estimator: Any, n_rows: int = PROBE_ROWS, seed: int = 0) -> np.ndarray | None:
    """Rows derived from the model: returns a float64 (n_rows, n_features) array or None.

    * scalers first in a pipeline (StandardScaler ``mean_``/``scale_``, MinMaxScaler,
      RobustScaler): rows spread over mean +- 3 scale;
    * tree models: each feature uniform over its split thresholds (+-10 %), plus rows that
      sit exactly on the float32 neighbours of thresholds (where float rounding would show);
    * otherwise a mix of N(0, 1) and N(0, 10) rows.
    """
    n = n_features_of(estimator)
    if not n:
        return None
    rng = np.random.default_rng(seed)
    first = _first_step(estimator)
    lo = hi = None
    if hasattr(first, "mean_") and hasattr(first, "scale_") and first.scale_ is not None:
        mean = np.asarray(first.mean_ if first.mean_ is not None else np.zeros(n), float)
        scale = np.asarray(first.scale_, float)
        lo, hi = mean - 3 * scale, mean + 3 * scale
    elif hasattr(first, "data_min_") and hasattr(first, "data_max_"):
        span = np.asarray(first.data_max_, float) - np.asarray(first.data_min_, float)
        lo, hi = first.data_min_ - 0.1 * span, first.data_max_ + 0.1 * span
    elif hasattr(first, "center_") and hasattr(first, "scale_"):
        lo = np.asarray(first.center_, float) - 3 * np.asarray(first.scale_, float)
        hi = np.asarray(first.center_, float) + 3 * np.asarray(first.scale_, float)
    last = estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator
    thresholds = _tree_thresholds(first, n) if first is last else None
    if thresholds is not None and lo is None:
        lo, hi = np.full(n, -1.0), np.full(n, 1.0)
        for f, thr in enumerate(thresholds):
            if thr.size:
                a, b = float(thr.min()), float(thr.max())
                pad = 0.1 * (b - a) + 1e-3
                lo[f], hi[f] = a - pad, b + pad
    if lo is None or hi is None:
        half = n_rows // 2
        return np.vstack(
            [rng.normal(0, 1, (half, n)), rng.normal(0, 10, (n_rows - half, n))]
        ).astype(np.float64)
    probe = rng.uniform(lo, hi, size=(n_rows, n))
    if thresholds is not None:
        edge = probe[: n_rows // 4].copy()
        for f, thr in enumerate(thresholds):
            if thr.size:
                picks = rng.choice(thr, size=len(edge))
                f32 = picks.astype(np.float32)
                up = np.nextafter(f32, np.float32(np.inf))
                edge[:, f] = np.where(rng.random(len(edge)) < 0.5, f32, up).astype(np.float64)
        probe = np.vstack([probe, edge])
    return probe


def _probe_frame(estimator: Any, probe: Any) -> Any:
    names = getattr(estimator, "feature_names_in_", None)
    if names is None or hasattr(probe, "columns"):
        return probe
    import pandas as pd

    return pd.DataFrame(np.asarray(probe), columns=list(names))


def combine_probes(estimator: Any, user_probe: Any) -> Any:
    derived = make_probe(estimator)
    if user_probe is None:
        return _probe_frame(estimator, derived) if derived is not None else None
    if hasattr(user_probe, "columns"):
        if derived is None:
            return user_probe
        import pandas as pd

        names = list(user_probe.columns)
        return pd.concat([user_probe, pd.DataFrame(derived, columns=names)], ignore_index=True)
    user = np.asarray(user_probe, dtype=np.float64)
    if user.ndim == 1:
        user = user.reshape(1, -1)
    if derived is not None and derived.shape[1] == user.shape[1]:
        user = np.vstack([user, derived])
    return _probe_frame(estimator, user)


def numeric_frame(probe: Any) -> bool:
    if not hasattr(probe, "dtypes"):
        return np.asarray(probe).dtype.kind in "biuf"
    return all(getattr(dt, "kind", "O") in "biuf" for dt in probe.dtypes)


def parity(reference: np.ndarray, candidate: np.ndarray, *, labels: bool) -> str | None:
    """None when ``candidate`` matches ``reference`` under the module's rule, else why not."""
    ref = np.asarray(reference)
    cand = np.asarray(candidate)
    if ref.shape != cand.shape:
        return f"shape {cand.shape} != scikit-learn's {ref.shape}"
    if labels or ref.dtype.kind not in "fc":
        bad = int(np.count_nonzero(ref != cand))
        if bad:
            return f"{bad}/{ref.size} labels differ on the probe"
        return None
    r = ref.astype(np.float64)
    c = cand.astype(np.float64)
    inf_r, inf_c = np.isinf(r), np.isinf(c)
    if not np.array_equal(inf_r, inf_c) or not np.array_equal(r[inf_r], c[inf_c]):
        return "infinite values differ on the probe"
    finite = ~inf_r
    diff = np.abs(r[finite] - c[finite])
    limit = ATOL + RTOL * np.abs(r[finite])
    nan_mismatch = not np.array_equal(np.isnan(c[finite]), np.isnan(r[finite]))
    if (diff.size and np.nanmax(diff - limit) > 0) or nan_mismatch:
        worst = float(np.nanmax(diff)) if diff.size else float("nan")
        return f"max |diff| {worst:.3g} exceeds atol {ATOL:g} + rtol {RTOL:g}*|ref|"
    return None
