"""Inference engines: ONNX Runtime (compiled) with a per-method scikit-learn fallback.

This module knows nothing about protocols or KServe. :func:`build_engine` turns a fitted
estimator (and/or a ``model.onnx``) into an :class:`Engine` whose :meth:`Engine.run` returns
exactly what ``estimator.<method>(X)`` would.

Parity rule (mode ``auto`` and ``onnx``): before a method is served by ONNX Runtime, both
engines run on a probe set (rows derived from the model, plus any user probe) and

* labels (``predict`` of a classifier) must be identical, element for element;
* every floating output (probabilities, log-probabilities, decision scores, regression
  values, transforms) must satisfy ``|onnx - sklearn| <= ATOL + RTOL * |sklearn|`` with
  ``RTOL = 1e-4`` and ``ATOL = 1e-5`` (``inf`` must match ``inf`` of the same sign),
  and have the same shape.

A method that fails the check, or that skl2onnx cannot convert, is served by scikit-learn
(``auto``) or makes :func:`build_engine` raise :class:`OnnxUnavailableError` (``onnx``).
"""

from __future__ import annotations

import logging
import pathlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from predictor.onnxgraph import (
    Graphs,
    OnnxModel,
    OnnxUnavailableError,
    OutFn,
    Runner,
    build_onnx_graphs,
    candidates_from_graph,
    float_caster,
    is_proba_output,
    label_runner,
    make_runner,
    pick,
    short_error,
)
from predictor.probe import (
    ATOL,
    PROBE_ROWS,
    RTOL,
    combine_probes,
    make_probe,
    n_features_of,
    numeric_frame,
    parity,
)

METHODS = ("predict", "predict_proba", "predict_log_proba", "decision_function", "transform")
ENGINE_MODES = ("auto", "onnx", "sklearn")

_log = logging.getLogger(__name__)


class EngineConfigError(ValueError):
    """Bad arguments to :func:`build_engine` (unknown mode, nothing to serve, ...)."""


class Engine:
    """Serves each method from the engine chosen at build time.

    ``runners`` maps method name to a callable ``X -> ndarray``; ``sources`` maps the same
    names to ``"onnx"`` or ``"sklearn"``. ``reasons`` says, for each method served by
    scikit-learn in ``auto`` mode, why ONNX was not used.
    """

    def __init__(
        self,
        runners: dict[str, Runner],
        sources: dict[str, str],
        *,
        reasons: dict[str, str] | None = None,
        n_features: int | None = None,
        onnx_model: OnnxModel | None = None,
    ) -> None:
        self._runners = dict(runners)
        self._sources = dict(sources)
        self.reasons = dict(reasons or {})
        self.n_features = n_features
        self._onnx = onnx_model
        # methods whose ONNX output comes from the shared main graph: one session.run
        # can serve several of them at once (see run_many).
        self._shared: dict[str, OutFn] = {}

    def methods(self) -> dict[str, str]:
        """Method name -> ``"onnx"`` or ``"sklearn"``, in :data:`METHODS` order."""
        return {m: self._sources[m] for m in METHODS if m in self._sources}

    def run(self, method: str, X: Any) -> np.ndarray:  # noqa: N803
        """Run ``method`` on ``X`` (2-D ndarray or DataFrame in the model's column order)."""
        try:
            runner = self._runners[method]
        except KeyError:
            raise ValueError(
                f"method {method!r} is not available; available: {', '.join(self.methods())}"
            ) from None
        return runner(X)

    def run_many(self, methods: Sequence[str], X: Any) -> dict[str, np.ndarray]:  # noqa: N803
        """Run several methods on the same rows; ONNX methods of the main graph share one call."""
        out: dict[str, np.ndarray] = {}
        shared = [m for m in methods if m in self._shared]
        if len(shared) > 1 and self._onnx is not None:
            raw = self._onnx.run_raw(X)
            for m in shared:
                out[m] = self._shared[m](raw)
        for m in methods:
            if m not in out:
                out[m] = self.run(m, X)
        return out

    def describe(self) -> str:
        """One line: which engine serves which method (for a start-up log line)."""
        parts = []
        for m, src in self.methods().items():
            why = self.reasons.get(m)
            parts.append(f"{m}={src}" + (f" ({why})" if why and src == "sklearn" else ""))
        return "engine: " + ", ".join(parts)


_COLUMNWISE = (
    "ColumnTransformer",
    "OneHotEncoder",
    "OrdinalEncoder",
    "TargetEncoder",
    "DictVectorizer",
    "FeatureHasher",
    "CountVectorizer",
    "TfidfVectorizer",
)


def _columnwise_step(estimator: Any, depth: int = 0) -> str | None:
    """Name of a step that works on named / categorical columns, if the model has one."""
    if depth > 8 or estimator is None or isinstance(estimator, str):
        return None
    name = type(estimator).__name__
    if name in _COLUMNWISE:
        return name
    parts: list[Any] = []
    for attr in ("steps", "transformer_list", "transformers_"):
        for item in getattr(estimator, attr, None) or ():
            parts.append(item[1] if isinstance(item, tuple) else item)
    for attr in ("estimator", "base_estimator", "regressor", "classifier", "final_estimator"):
        sub = getattr(estimator, attr, None)
        if sub is not None and not isinstance(sub, str):
            parts.append(sub)
    for part in parts:
        found = _columnwise_step(part, depth + 1)
        if found:
            return found
    return None


def _sklearn_methods(estimator: Any) -> list[str]:
    return [m for m in METHODS if hasattr(estimator, m)]


def build_engine(
    estimator: Any,
    *,
    mode: str = "auto",
    probe: Any = None,
    onnx_path: pathlib.Path | None = None,
    logger: logging.Logger | None = None,
    onnx_threads: int = 1,
) -> Engine:
    """Build the engine for ``estimator`` (or for ``onnx_path`` alone).

    * ``mode="sklearn"``: plain scikit-learn for every method.
    * ``mode="auto"``: ONNX Runtime per method where conversion and parity succeed, else
      scikit-learn, with one log line per fallback saying why.
    * ``mode="onnx"``: like auto but any method that can't be served by ONNX raises
      :class:`OnnxUnavailableError`.
    * ``onnx_path``: serve that graph (checked against ``estimator`` by the same parity rule
      when one is given; alone, its outputs define the methods: label -> predict,
      probabilities -> predict_proba and predict_log_proba, a single float output -> predict).
    """
    log = logger or _log
    if mode not in ENGINE_MODES:
        raise EngineConfigError(f"unknown engine mode {mode!r}; use one of {ENGINE_MODES}")
    if estimator is None and onnx_path is None:
        raise EngineConfigError("nothing to serve: neither an estimator nor an ONNX file")

    if estimator is None:
        if mode == "sklearn":
            raise EngineConfigError("engine mode 'sklearn' needs a scikit-learn artifact")
        assert onnx_path is not None
        om = OnnxModel.from_bytes(pathlib.Path(onnx_path).read_bytes(), onnx_threads)
        cands = candidates_from_graph(om, None, {})
        if not cands:
            raise OnnxUnavailableError(
                f"{onnx_path}: no usable output (want a label/probabilities pair or one "
                "float tensor)"
            )
        engine = Engine(
            {m: make_runner(om, fn) for m, (fn, _) in cands.items()},
            dict.fromkeys(cands, "onnx"),
            n_features=om.n_features,
            onnx_model=om,
        )
        engine._shared = {m: fn for m, (fn, _) in cands.items()}
        log.info("%s (from %s)", engine.describe(), onnx_path)
        return engine

    methods = _sklearn_methods(estimator)
    if not methods:
        raise EngineConfigError(
            f"{type(estimator).__name__} has none of the methods {', '.join(METHODS)}"
        )
    runners: dict[str, Runner] = {m: getattr(estimator, m) for m in methods}
    sources = dict.fromkeys(methods, "sklearn")
    n_features = n_features_of(estimator)
    if mode == "sklearn":
        engine = Engine(runners, sources, n_features=n_features)
        log.info("%s (mode sklearn)", engine.describe())
        return engine

    reasons: dict[str, str] = {}
    onnx_runners: dict[str, Runner] = {}
    shared: dict[str, OutFn] = {}
    main: OnnxModel | None = None

    columnwise = _columnwise_step(estimator) if onnx_path is None else None
    probe_x = None if columnwise else combine_probes(estimator, probe)
    if columnwise:
        reasons.update(
            dict.fromkeys(
                methods,
                f"{columnwise} works on named/categorical columns; the ONNX graph takes one "
                "numeric tensor",
            )
        )
    elif probe_x is None:
        reasons.update(
            dict.fromkeys(methods, "no probe rows: the model has no n_features_in_ and no probe")
        )
    elif not numeric_frame(probe_x):
        reasons.update(dict.fromkeys(methods, "non-numeric input columns"))
    elif n_features is None and onnx_path is None:
        reasons.update(dict.fromkeys(methods, "unknown number of input features"))
    else:
        like: dict[str, np.ndarray] = {}
        for m in methods:
            try:
                like[m] = np.asarray(getattr(estimator, m)(probe_x))
            except Exception as e:  # a method present but unusable (e.g. available_if)
                reasons[m] = f"scikit-learn {m} failed on the probe: {short_error(e)}"
        classes = getattr(estimator, "classes_", None)
        classes = np.asarray(classes) if classes is not None else None
        graphs = Graphs()
        if onnx_path is not None:
            try:
                graphs.main = OnnxModel.from_bytes(
                    pathlib.Path(onnx_path).read_bytes(), onnx_threads
                )
            except Exception as e:
                graphs.main_err = f"{onnx_path}: {short_error(e)}"
        else:
            assert n_features is not None
            graphs = build_onnx_graphs(estimator, n_features, like, onnx_threads)
        main, raw, main_err, raw_err = graphs.main, graphs.raw, graphs.main_err, graphs.raw_err
        chosen: dict[str, tuple[OutFn, OnnxModel]] = {}
        if main is not None:
            for m, (fn, _name) in candidates_from_graph(main, classes, like).items():
                chosen[m] = (fn, main)
        if raw is not None and "decision_function" in like:
            rproba = next((o for o in raw.outputs if is_proba_output(o)), None)
            if rproba is not None:
                dc = float_caster(like["decision_function"])
                chosen["decision_function"] = (pick(rproba.name, dc), raw)
        raw_cache: dict[int, dict[str, np.ndarray]] = {}
        for m in methods:
            if m in reasons:
                continue
            if m not in chosen:
                err = raw_err if m == "decision_function" and raw_err else main_err
                reasons[m] = err or "the ONNX graph has no output for this method"
                continue
            fn, om = chosen[m]
            try:
                key = id(om)
                if key not in raw_cache:
                    raw_cache[key] = om.run_raw(probe_x)
                got = fn(raw_cache[key])
            except Exception as e:
                reasons[m] = f"onnxruntime failed on the probe: {short_error(e)}"
                continue
            why = parity(like[m], got, labels=(m == "predict" and classes is not None))
            if why is not None:
                reasons[m] = f"parity check failed: {why}"
                continue
            if got.dtype != like[m].dtype and like[m].dtype.kind not in "OUS":
                reasons[m] = f"dtype {got.dtype} != scikit-learn's {like[m].dtype}"
                continue
            onnx_runners[m] = make_runner(om, fn, getattr(estimator, m))
            if om is main:
                shared[m] = fn
        if "predict" in onnx_runners and graphs.labels is not None:
            # predict alone runs the label-only graph; with other outputs, the main one
            runner = label_runner(graphs.labels, classes, like, probe_x, estimator.predict)
            onnx_runners["predict"] = runner or onnx_runners["predict"]

    if mode == "onnx":
        missing = [m for m in methods if m not in onnx_runners]
        if missing:
            detail = "; ".join(f"{m}: {reasons.get(m, 'not convertible')}" for m in missing)
            raise OnnxUnavailableError(
                f"engine mode 'onnx': {type(estimator).__name__} cannot be served by ONNX "
                f"Runtime for {', '.join(missing)} ({detail})"
            )

    for m, r in onnx_runners.items():
        runners[m] = r
        sources[m] = "onnx"
    for m in methods:
        if sources[m] == "sklearn":
            log.info("engine: %s served by scikit-learn: %s", m, reasons.get(m, "?"))
    engine = Engine(
        runners,
        sources,
        reasons={m: r for m, r in reasons.items() if sources.get(m) == "sklearn"},
        n_features=n_features,
        onnx_model=main if shared else None,
    )
    engine._shared = shared
    log.info("%s", engine.describe())
    return engine


__all__ = [
    "ATOL",
    "ENGINE_MODES",
    "METHODS",
    "PROBE_ROWS",
    "RTOL",
    "Engine",
    "EngineConfigError",
    "OnnxUnavailableError",
    "build_engine",
    "make_probe",
    "parity",
]
