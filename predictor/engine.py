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
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

METHODS = ("predict", "predict_proba", "predict_log_proba", "decision_function", "transform")
ENGINE_MODES = ("auto", "onnx", "sklearn")

RTOL = 1e-4
ATOL = 1e-5
PROBE_ROWS = 256

_log = logging.getLogger(__name__)


class OnnxUnavailableError(ValueError):
    """Mode ``onnx`` was asked for but some output cannot be served by ONNX Runtime."""


class EngineConfigError(ValueError):
    """Bad arguments to :func:`build_engine` (unknown mode, nothing to serve, ...)."""


Runner = Callable[[Any], np.ndarray]
_OutFn = Callable[[dict[str, np.ndarray]], np.ndarray]


def _pick(name: str, cast: Callable[[Any], np.ndarray]) -> _OutFn:
    """A function of a graph's raw outputs: ``cast(raw[name])``."""

    def out(raw: dict[str, np.ndarray]) -> np.ndarray:
        return cast(raw[name])

    return out


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
        onnx_model: _OnnxModel | None = None,
    ) -> None:
        self._runners = dict(runners)
        self._sources = dict(sources)
        self.reasons = dict(reasons or {})
        self.n_features = n_features
        self._onnx = onnx_model
        # methods whose ONNX output comes from the shared main graph: one session.run
        # can serve several of them at once (see run_many).
        self._shared: dict[str, _OutFn] = {}

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


# --------------------------------------------------------------------------- ONNX side


def _ort():
    try:
        import onnxruntime as ort
    except ImportError as e:  # pragma: no cover - depends on the install
        raise OnnxUnavailableError(f"onnxruntime is not installed ({e})") from e
    return ort


def _session(model_bytes: bytes, threads: int):
    ort = _ort()
    so = ort.SessionOptions()
    so.intra_op_num_threads = max(1, threads)
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    return ort.InferenceSession(model_bytes, so, providers=["CPUExecutionProvider"])


_ORT_DTYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64}


@dataclass
class _OnnxModel:
    """An ONNX Runtime session with one 2-D numeric input."""

    session: Any
    input_name: str
    input_dtype: Any
    n_features: int | None
    outputs: list[Any] = field(default_factory=list)  # onnxruntime NodeArg

    @classmethod
    def from_bytes(cls, model_bytes: bytes, threads: int = 1) -> _OnnxModel:
        sess = _session(model_bytes, threads)
        inputs = sess.get_inputs()
        if len(inputs) != 1:
            names = ", ".join(i.name for i in inputs)
            raise OnnxUnavailableError(
                f"the ONNX graph has {len(inputs)} inputs ({names}); one 2-D numeric input "
                "is supported"
            )
        inp = inputs[0]
        if inp.type not in _ORT_DTYPES:
            raise OnnxUnavailableError(
                f"the ONNX graph input {inp.name!r} is {inp.type}; float or double is supported"
            )
        shape = list(inp.shape or [])
        n_features = shape[1] if len(shape) == 2 and isinstance(shape[1], int) else None
        return cls(sess, inp.name, _ORT_DTYPES[inp.type], n_features, list(sess.get_outputs()))

    def prepare(self, x: Any) -> np.ndarray:
        if hasattr(x, "to_numpy"):  # pandas DataFrame
            arr = x.to_numpy(dtype=self.input_dtype)
        else:
            arr = np.asarray(x, dtype=self.input_dtype)
        if arr.ndim != 2:
            raise ValueError(f"expected a 2-D input, got shape {arr.shape}")
        return np.ascontiguousarray(arr)

    def run_raw(self, x: Any) -> dict[str, np.ndarray]:
        res = self.session.run(None, {self.input_name: self.prepare(x)})
        return {o.name: r for o, r in zip(self.outputs, res, strict=True)}


def _is_label_output(o: Any) -> bool:
    return o.type in ("tensor(int64)", "tensor(string)", "tensor(int32)") and (
        len(o.shape or []) == 1 or "label" in o.name.lower()
    )


def _is_proba_output(o: Any) -> bool:
    return o.type.startswith("seq(map") or (o.type in _ORT_DTYPES and "prob" in o.name.lower())


def _as_array(value: Any) -> np.ndarray:
    """ONNX output -> ndarray; a ZipMap (list of dicts) becomes a 2-D array in key order."""
    if isinstance(value, list):
        if not value:
            return np.zeros((0, 0))
        keys = list(value[0].keys())
        return np.array([[row[k] for k in keys] for row in value], dtype=np.float64)
    return np.asarray(value)


def _label_caster(classes: np.ndarray | None) -> Callable[[np.ndarray], np.ndarray]:
    if classes is None:
        return lambda a: np.asarray(a).ravel()
    dtype = classes.dtype

    def cast(a: np.ndarray) -> np.ndarray:
        a = np.asarray(a).ravel()
        if a.dtype == dtype:
            return a
        if dtype.kind in "iub" and a.dtype.kind in "iu":
            return a.astype(dtype)
        if dtype.kind in "fc":
            return a.astype(dtype)
        return np.array(a.tolist(), dtype=dtype)

    return cast


def _float_caster(like: np.ndarray | None) -> Callable[[np.ndarray], np.ndarray]:
    """Shape/dtype as scikit-learn gave on the probe (e.g. (n, 1) -> (n,), float32 -> 64)."""
    dtype = like.dtype if like is not None and like.dtype.kind == "f" else np.dtype(np.float64)
    ndim = like.ndim if like is not None else None

    def cast(a: np.ndarray) -> np.ndarray:
        a = _as_array(a).astype(dtype, copy=False)
        if ndim == 1 and a.ndim == 2:
            a = a[:, -1] if a.shape[1] == 2 and like is not None and like.ndim == 1 else a
            if a.ndim == 2 and a.shape[1] == 1:
                a = a[:, 0]
        return a

    return cast


def _log_of(a: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.log(_as_array(a).astype(np.float64, copy=False))


def _convert(estimator: Any, n_features: int, dtype: Any, options: dict) -> bytes:
    try:
        from skl2onnx import to_onnx
    except ImportError as e:  # pragma: no cover - depends on the install
        raise OnnxUnavailableError(f"skl2onnx is not installed ({e})") from e
    sample = np.zeros((1, n_features), dtype=dtype)
    final = estimator
    while hasattr(final, "steps"):  # a Pipeline: options belong to its final estimator
        final = final.steps[-1][1]
    onx = to_onnx(estimator, sample, options={id(final): options} if options else None)
    return onx.SerializeToString()


def _short(e: BaseException) -> str:
    msg = " ".join(str(e).split())
    if len(msg) > 160:
        msg = msg[:157] + "..."
    return f"{type(e).__name__}: {msg}" if msg else type(e).__name__


# --------------------------------------------------------------------------- probe


def _n_features(estimator: Any) -> int | None:
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
    n = _n_features(estimator)
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


def _combine_probes(estimator: Any, user_probe: Any) -> Any:
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


def _numeric_frame(probe: Any) -> bool:
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


# --------------------------------------------------------------------------- build


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


def _candidates_from_graph(
    onnx_model: _OnnxModel, classes: np.ndarray | None, like: dict[str, np.ndarray]
) -> dict[str, tuple[_OutFn, str]]:
    """method -> (function of the raw outputs, output name) for a classifier/regressor graph."""
    outs = onnx_model.outputs
    label = next((o for o in outs if _is_label_output(o)), None)
    proba = next((o for o in outs if _is_proba_output(o)), None)
    cands: dict[str, tuple[_OutFn, str]] = {}
    if label is not None:
        cast = _label_caster(classes)
        cands["predict"] = (_pick(label.name, cast), label.name)
        if proba is not None:
            pc = _float_caster(like.get("predict_proba"))
            cands["predict_proba"] = (_pick(proba.name, pc), proba.name)
            cands["predict_log_proba"] = (_pick(proba.name, _log_of), proba.name)
    elif outs and outs[0].type in _ORT_DTYPES:
        name = outs[0].name
        method = "transform" if "transform" in like and "predict" not in like else "predict"
        fc = _float_caster(like.get(method))
        cands[method] = (_pick(name, fc), name)
    return cands


def _make_runner(onnx_model: _OnnxModel, fn: _OutFn, fallback: Runner | None = None) -> Runner:
    """ONNX Runtime for ``fn``; a DataFrame that won't become one float tensor goes to
    ``fallback`` (the scikit-learn method) instead of failing."""
    if fallback is None:

        def run(x: Any) -> np.ndarray:
            return fn(onnx_model.run_raw(x))

        return run

    def run_or_fallback(x: Any) -> np.ndarray:
        if hasattr(x, "columns"):
            try:
                arr = onnx_model.prepare(x)
            except (TypeError, ValueError):
                return fallback(x)
            return fn(onnx_model.run_raw(arr))
        return fn(onnx_model.run_raw(x))

    return run_or_fallback


@dataclass
class _Graphs:
    """What skl2onnx made of an estimator, and why a part is missing."""

    main: _OnnxModel | None = None
    raw: _OnnxModel | None = None  # raw scores (decision_function)
    labels: _OnnxModel | None = None  # the main graph cut down to its label output
    main_err: str | None = None
    raw_err: str | None = None


def _label_graph(model_bytes: bytes, threads: int) -> _OnnxModel | None:
    """The graph cut down to the nodes its label output needs, when that drops some
    (a LogisticRegression's softmax is only for its probabilities: ~45 us of 110 for
    1000 iris rows); None when every node is needed (a tree ensemble's single node)."""
    import onnx
    from onnx.utils import Extractor

    model = onnx.load_from_string(model_bytes)
    graph = model.graph
    label = next((o.name for o in graph.output if "label" in o.name.lower()), None)
    if label is None:
        return None
    producers = {out: node for node in graph.node for out in node.output}
    needed: set[int] = set()
    todo = [label]
    while todo:
        node = producers.get(todo.pop())
        if node is not None and id(node) not in needed:
            needed.add(id(node))
            todo.extend(node.input)
    if len(needed) == len(graph.node):
        return None
    pruned = Extractor(model).extract_model([i.name for i in graph.input], [label])
    return _OnnxModel.from_bytes(pruned.SerializeToString(), threads)


def _label_runner(
    graph: _OnnxModel, classes: Any, like: dict[str, np.ndarray], probe: Any, fallback: Runner
) -> Runner | None:
    """A runner for the label-only graph if it gives scikit-learn's labels on the probe."""
    fn = _candidates_from_graph(graph, classes, like).get("predict")
    if fn is None:
        return None
    try:
        if parity(like["predict"], fn[0](graph.run_raw(probe)), labels=True) is not None:
            return None
    except Exception:
        return None  # the main graph keeps serving predict
    return _make_runner(graph, fn[0], fallback)


def _build_onnx_graphs(
    estimator: Any, n_features: int, methods: Iterable[str], threads: int
) -> _Graphs:
    """Convert with skl2onnx: the main graph, the raw-score graph and the label graph.

    Double precision is tried first (tighter parity); float32 when the converter or
    onnxruntime lacks the double kernels.
    """
    is_clf = hasattr(estimator, "classes_")
    out = _Graphs()
    base = {"zipmap": False} if is_clf else {}
    for dtype in (np.float64, np.float32):
        try:
            main_bytes = _convert(estimator, n_features, dtype, base)
            out.main = _OnnxModel.from_bytes(main_bytes, threads)
            out.main_err = None
        except Exception as e:
            out.main_err = f"skl2onnx/onnxruntime: {_short(e)}"
            continue
        if is_clf:
            try:
                out.labels = _label_graph(main_bytes, threads)
            except Exception as e:  # the main graph serves labels too: only slower
                _log.debug("no label-only graph: %s", _short(e))
        break
    if is_clf and "decision_function" in methods:
        for dtype in (np.float64, np.float32):
            try:
                opts = {"zipmap": False, "raw_scores": True}
                out.raw = _OnnxModel.from_bytes(
                    _convert(estimator, n_features, dtype, opts), threads
                )
                out.raw_err = None
                break
            except Exception as e:
                out.raw_err = f"skl2onnx/onnxruntime: {_short(e)}"
    return out


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
        om = _OnnxModel.from_bytes(pathlib.Path(onnx_path).read_bytes(), onnx_threads)
        cands = _candidates_from_graph(om, None, {})
        if not cands:
            raise OnnxUnavailableError(
                f"{onnx_path}: no usable output (want a label/probabilities pair or one "
                "float tensor)"
            )
        engine = Engine(
            {m: _make_runner(om, fn) for m, (fn, _) in cands.items()},
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
    n_features = _n_features(estimator)
    if mode == "sklearn":
        engine = Engine(runners, sources, n_features=n_features)
        log.info("%s (mode sklearn)", engine.describe())
        return engine

    reasons: dict[str, str] = {}
    onnx_runners: dict[str, Runner] = {}
    shared: dict[str, _OutFn] = {}
    main: _OnnxModel | None = None

    columnwise = _columnwise_step(estimator) if onnx_path is None else None
    probe_x = None if columnwise else _combine_probes(estimator, probe)
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
    elif not _numeric_frame(probe_x):
        reasons.update(dict.fromkeys(methods, "non-numeric input columns"))
    elif n_features is None and onnx_path is None:
        reasons.update(dict.fromkeys(methods, "unknown number of input features"))
    else:
        like: dict[str, np.ndarray] = {}
        for m in methods:
            try:
                like[m] = np.asarray(getattr(estimator, m)(probe_x))
            except Exception as e:  # a method present but unusable (e.g. available_if)
                reasons[m] = f"scikit-learn {m} failed on the probe: {_short(e)}"
        classes = getattr(estimator, "classes_", None)
        classes = np.asarray(classes) if classes is not None else None
        graphs = _Graphs()
        if onnx_path is not None:
            try:
                graphs.main = _OnnxModel.from_bytes(
                    pathlib.Path(onnx_path).read_bytes(), onnx_threads
                )
            except Exception as e:
                graphs.main_err = f"{onnx_path}: {_short(e)}"
        else:
            assert n_features is not None
            graphs = _build_onnx_graphs(estimator, n_features, like, onnx_threads)
        main, raw, main_err, raw_err = graphs.main, graphs.raw, graphs.main_err, graphs.raw_err
        chosen: dict[str, tuple[_OutFn, _OnnxModel]] = {}
        if main is not None:
            for m, (fn, _name) in _candidates_from_graph(main, classes, like).items():
                chosen[m] = (fn, main)
        if raw is not None and "decision_function" in like:
            rproba = next((o for o in raw.outputs if _is_proba_output(o)), None)
            if rproba is not None:
                dc = _float_caster(like["decision_function"])
                chosen["decision_function"] = (_pick(rproba.name, dc), raw)
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
                reasons[m] = f"onnxruntime failed on the probe: {_short(e)}"
                continue
            why = parity(like[m], got, labels=(m == "predict" and classes is not None))
            if why is not None:
                reasons[m] = f"parity check failed: {why}"
                continue
            if got.dtype != like[m].dtype and like[m].dtype.kind not in "OUS":
                reasons[m] = f"dtype {got.dtype} != scikit-learn's {like[m].dtype}"
                continue
            onnx_runners[m] = _make_runner(om, fn, getattr(estimator, m))
            if om is main:
                shared[m] = fn
        if "predict" in onnx_runners and graphs.labels is not None:
            # predict alone runs the label-only graph; with other outputs, the main one
            runner = _label_runner(graphs.labels, classes, like, probe_x, estimator.predict)
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
