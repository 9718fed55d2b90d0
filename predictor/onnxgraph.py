"""The ONNX side of the engine: skl2onnx conversion and ONNX Runtime sessions.

:func:`build_onnx_graphs` converts an estimator into the graphs the engine may serve
(main, raw scores, labels only); :func:`candidates_from_graph` maps a graph's outputs to
scikit-learn method names; :func:`make_runner` turns one into ``X -> ndarray``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from predictor.probe import parity

_log = logging.getLogger("predictor.engine")

Runner = Callable[[Any], np.ndarray]
OutFn = Callable[[dict[str, np.ndarray]], np.ndarray]


class OnnxUnavailableError(ValueError):
    """Mode ``onnx`` was asked for but some output cannot be served by ONNX Runtime."""


def pick(name: str, cast: Callable[[Any], np.ndarray]) -> OutFn:
    """A function of a graph's raw outputs: ``cast(raw[name])``."""

    def out(raw: dict[str, np.ndarray]) -> np.ndarray:
        return cast(raw[name])

    return out


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
class OnnxModel:
    """An ONNX Runtime session with one 2-D numeric input."""

    session: Any
    input_name: str
    input_dtype: Any
    n_features: int | None
    outputs: list[Any] = field(default_factory=list)  # onnxruntime NodeArg

    def __post_init__(self) -> None:
        self._names = [o.name for o in self.outputs]
        # InferenceSession.run checks its arguments on every call (~1.5 µs, a tenth of a
        # one-row forest call); run_raw always passes the one input by name and every
        # output, so it calls the session's native run directly where there is one.
        native = getattr(self.session, "_sess", None)
        self._run = getattr(native, "run", None) or (
            lambda names, feed, options: self.session.run(names, feed, options)
        )

    @classmethod
    def from_bytes(cls, model_bytes: bytes, threads: int = 1) -> OnnxModel:
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
        if (
            type(x) is np.ndarray
            and x.dtype == self.input_dtype
            and x.ndim == 2
            and x.flags.c_contiguous
        ):
            return x
        if hasattr(x, "to_numpy"):  # pandas DataFrame
            arr = x.to_numpy(dtype=self.input_dtype)
        else:
            arr = np.asarray(x, dtype=self.input_dtype)
        if arr.ndim != 2:
            raise ValueError(f"expected a 2-D input, got shape {arr.shape}")
        return np.ascontiguousarray(arr)

    def run_raw(self, x: Any) -> dict[str, np.ndarray]:
        res = self._run(self._names, {self.input_name: self.prepare(x)}, None)
        return dict(zip(self._names, res, strict=True))


def _is_label_output(o: Any) -> bool:
    return o.type in ("tensor(int64)", "tensor(string)", "tensor(int32)") and (
        len(o.shape or []) == 1 or "label" in o.name.lower()
    )


def is_proba_output(o: Any) -> bool:
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


def float_caster(like: np.ndarray | None) -> Callable[[np.ndarray], np.ndarray]:
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


def short_error(e: BaseException) -> str:
    msg = " ".join(str(e).split())
    if len(msg) > 160:
        msg = msg[:157] + "..."
    return f"{type(e).__name__}: {msg}" if msg else type(e).__name__


def candidates_from_graph(
    onnx_model: OnnxModel, classes: np.ndarray | None, like: dict[str, np.ndarray]
) -> dict[str, tuple[OutFn, str]]:
    """method -> (function of the raw outputs, output name) for a classifier/regressor graph."""
    outs = onnx_model.outputs
    label = next((o for o in outs if _is_label_output(o)), None)
    proba = next((o for o in outs if is_proba_output(o)), None)
    cands: dict[str, tuple[OutFn, str]] = {}
    if label is not None:
        cast = _label_caster(classes)
        cands["predict"] = (pick(label.name, cast), label.name)
        if proba is not None:
            pc = float_caster(like.get("predict_proba"))
            cands["predict_proba"] = (pick(proba.name, pc), proba.name)
            cands["predict_log_proba"] = (pick(proba.name, _log_of), proba.name)
    elif outs and outs[0].type in _ORT_DTYPES:
        name = outs[0].name
        method = "transform" if "transform" in like and "predict" not in like else "predict"
        fc = float_caster(like.get(method))
        cands[method] = (pick(name, fc), name)
    return cands


def make_runner(onnx_model: OnnxModel, fn: OutFn, fallback: Runner | None = None) -> Runner:
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
class Graphs:
    """What skl2onnx made of an estimator, and why a part is missing."""

    main: OnnxModel | None = None
    raw: OnnxModel | None = None  # raw scores (decision_function)
    labels: OnnxModel | None = None  # the main graph cut down to its label output
    main_err: str | None = None
    raw_err: str | None = None


def _label_graph(model_bytes: bytes, threads: int) -> OnnxModel | None:
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
    return OnnxModel.from_bytes(pruned.SerializeToString(), threads)


def label_runner(
    graph: OnnxModel, classes: Any, like: dict[str, np.ndarray], probe: Any, fallback: Runner
) -> Runner | None:
    """A runner for the label-only graph if it gives scikit-learn's labels on the probe."""
    fn = candidates_from_graph(graph, classes, like).get("predict")
    if fn is None:
        return None
    try:
        if parity(like["predict"], fn[0](graph.run_raw(probe)), labels=True) is not None:
            return None
    except Exception:
        return None  # the main graph keeps serving predict
    return make_runner(graph, fn[0], fallback)


def build_onnx_graphs(
    estimator: Any, n_features: int, methods: Iterable[str], threads: int
) -> Graphs:
    """Convert with skl2onnx: the main graph, the raw-score graph and the label graph.

    Double precision is tried first (tighter parity); float32 when the converter or
    onnxruntime lacks the double kernels.
    """
    is_clf = hasattr(estimator, "classes_")
    out = Graphs()
    base = {"zipmap": False} if is_clf else {}
    for dtype in (np.float64, np.float32):
        try:
            main_bytes = _convert(estimator, n_features, dtype, base)
            out.main = OnnxModel.from_bytes(main_bytes, threads)
            out.main_err = None
        except Exception as e:
            out.main_err = f"skl2onnx/onnxruntime: {short_error(e)}"
            continue
        if is_clf:
            try:
                out.labels = _label_graph(main_bytes, threads)
            except Exception as e:  # the main graph serves labels too: only slower
                _log.debug("no label-only graph: %s", short_error(e))
        break
    if is_clf and "decision_function" in methods:
        for dtype in (np.float64, np.float32):
            try:
                opts = {"zipmap": False, "raw_scores": True}
                out.raw = OnnxModel.from_bytes(
                    _convert(estimator, n_features, dtype, opts), threads
                )
                out.raw_err = None
                break
            except Exception as e:
                out.raw_err = f"skl2onnx/onnxruntime: {short_error(e)}"
    return out
