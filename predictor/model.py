"""The ``kserve.Model`` subclass: load / preprocess / predict / postprocess.

It wires the rooms together and owns none of their details: ``artifacts`` finds and
loads the file, ``schema`` describes the estimator, ``codec`` turns requests into ``X``,
``engine`` (optionally behind ``batching``) runs the methods, ``responses`` shapes the
outputs.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import sklearn
from kserve.protocol.infer_type import InferRequest, InferResponse

from predictor import artifacts, codec, costs, responses
from predictor.errors import (
    BadRequest,
    InferenceFailed,
    ModelLoadError,
    ModelNotReady,
    ModelRejectedInput,
    UnknownOutput,
)
from predictor.metrics import MODEL_INFO, batch_rows
from predictor.schema import METHODS, TENSOR_INPUT, ModelSchema, describe, v2_datatype
from predictor.settings import Settings
from predictor.stages import StagedModel
from predictor.tensors import brief

log = logging.getLogger(__name__)

PLATFORM = "sklearn"
# Errors an estimator raises for input it cannot handle (unknown category, bad dtype, ...).
INPUT_ERRORS = (ValueError, TypeError, KeyError, IndexError)
OFFLOAD_VALUES = 20_000  # requests with more input values are decoded in a worker thread


def _is_shape(shape: Any) -> bool:
    return all(isinstance(d, int) and d >= 0 for d in shape)


@dataclass
class Prepared:
    """What ``preprocess`` hands to ``predict``: the input and the methods to run."""

    x: Any
    methods: list[str]
    request: InferRequest | None  # None for V1


class SklearnModel(StagedModel):
    """Serves one scikit-learn estimator (or Pipeline) over V1 and V2."""

    http_lane = True  # runs outside a task (predictor.http_lane); subclasses must opt in

    def __init__(self, settings: Settings) -> None:
        """Build an unloaded model.

        Args:
            settings: The predictor's settings; ``model_name`` names the endpoint.
        """
        super().__init__(settings.model_name)
        self.ready: bool = False
        self.settings = settings
        self.estimator: Any = None
        self.schema: ModelSchema | None = None
        self.engine: Any = False  # KServe reads `engine` as "start an engine task" flag
        self.runner: Any = None
        self.batcher: Any = None
        self.costs = costs.CostModel(0)  # measured at load: which calls run on the loop
        self.version: str | None = None
        self.default_output: str = settings.default_output
        self.v1_output: str = settings.v1_output
        self.format: str | None = None
        self.saved_sklearn_version: str | None = None
        self._lock = threading.Lock()
        self._runner_built = threading.Event()
        self._artifact: artifacts.Artifact | None = None
        self._sample: Any = None
        self._first_call_us: dict[str, float] = {}

    # ---------------------------------------------------------------- load
    def load(self) -> bool:
        """Find, verify and load the artifact, describe it and build its engine.

        Safe to call more than once (KServe calls ``load`` again on a request to a model
        that is not ready yet): only the first call loads.

        Returns:
            True once the model is ready.

        Raises:
            ModelLoadError: the artifact is missing, ambiguous, tampered with, untrusted or
                unreadable, or a configured default output is not offered by the estimator.
        """
        if not self._lock.acquire(blocking=False):
            return self.ready  # another thread is loading
        try:
            if not self.ready:
                self._load()
                self.ready = True
        finally:
            self._lock.release()
        return self.ready

    def _load(self) -> None:
        settings = self.settings
        artifact = artifacts.find_artifact(settings.model_dir)
        digest = artifacts.verify_digest(artifact.path, settings.model_sha256)
        digest = digest or artifacts.sha256_of(artifact.path)
        estimator, saved = artifacts.load_estimator(artifact, settings.trusted_types)
        if estimator is None:
            raise ModelLoadError(
                f"{artifact.path} is an ONNX file; serve it next to the scikit-learn artifact "
                "it was converted from (the schema and parity check need the estimator)"
            )
        if saved and saved != sklearn.__version__:
            log.warning(
                "model was saved with scikit-learn %s but %s is running; predictions may "
                "differ: retrain or pin scikit-learn==%s",
                saved,
                sklearn.__version__,
                saved,
                extra={"model": self.name},
            )
        sample_path = artifacts.find_sample(artifact)
        names = getattr(estimator, "feature_names_in_", None)
        sample = (
            artifacts.read_sample(sample_path, None if names is None else list(names))
            if sample_path
            else None
        )
        schema = describe(estimator, sample)
        self.default_output = self._resolve_output("default_output", schema, estimator)
        self.v1_output = self._resolve_output("v1_output", schema, estimator)
        self.estimator, self.schema = estimator, schema
        self.version, self.format, self.saved_sklearn_version = digest[:12], artifact.format, saved
        self._artifact, self._sample = artifact, sample
        self.runner = self._build_runner(estimator, artifact, sample)
        self._runner_built.set()
        probe = self._probe(schema, estimator, sample)
        self.schema = self._observe_outputs(schema, probe)
        self.costs = self._measure_costs(probe)
        MODEL_INFO.labels(
            self.name, self.version, self.format, self.engine_summary(), saved or "unknown"
        ).set(1)
        log.info(
            "loaded %s (%s, sha256 %s) serving %s; on the event loop up to %s us: %s",
            artifact.path,
            type(estimator).__name__,
            digest,
            self.engine_summary(),
            settings.inline_max_us,
            self.costs.describe(),
            extra={"model": self.name},
        )

    def _resolve_output(self, option: str, schema: ModelSchema, estimator: Any) -> str:
        """The configured method, or (left at its default) the estimator's first one."""
        method = getattr(self.settings, option)
        if method in schema.methods:
            return str(method)
        if option in self.settings.model_fields_set or not schema.methods:
            raise ModelLoadError(
                f"--{option} is {method!r} but this {type(estimator).__name__} offers "
                f"only: {', '.join(schema.methods) or 'no known method'}"
            )
        log.info(
            "%s has no %s; %s is %s",
            type(estimator).__name__,
            method,
            option,
            schema.methods[0],
            extra={"model": self.name},
        )
        return schema.methods[0]

    def _build_runner(self, estimator: Any, artifact: Any, sample: Any) -> Any:
        from predictor.engine import OnnxUnavailableError, build_engine

        probe = sample if sample is None or self.schema_has_names() else sample.to_numpy()
        options = {"probe": probe, "onnx_path": artifact.onnx_path, "logger": log}
        try:
            return build_engine(estimator, mode=self.settings.engine, **options)
        except OnnxUnavailableError as err:
            raise ModelLoadError(f"--engine onnx: {err}") from err
        except Exception as err:
            if self.settings.engine != "auto":
                raise ModelLoadError(f"engine {self.settings.engine}: {err}") from err
            log.warning(
                "ONNX engine unavailable (%s: %s); serving with scikit-learn",
                type(err).__name__,
                err,
                extra={"model": self.name},
            )
            return build_engine(estimator, mode="sklearn", **options)

    def _probe(self, schema: ModelSchema, estimator: Any, sample: Any) -> Any:
        """Two input rows the model takes (from ``sample.csv`` or the model), or None."""
        from predictor.engine import make_probe

        probe: Any = None
        if sample is not None:
            probe = sample.iloc[:2] if schema.feature_names else sample.to_numpy()[:2]
        elif not schema.feature_names or schema.tensor_datatype == "FP64":
            try:
                rows = make_probe(estimator, n_rows=2)
            except Exception as err:  # e.g. infinite tree thresholds
                log.info("no probe rows: %s", err, extra={"model": self.name})
                rows = None
            if rows is not None and schema.feature_names:
                probe = pd.DataFrame(rows, columns=schema.feature_names)
            else:
                probe = rows
        return probe

    def _observe_outputs(self, schema: ModelSchema, probe: Any) -> ModelSchema:
        """Run each method on the probe rows so metadata states the real output types."""
        if probe is None:
            return schema
        observed = {}
        for method in schema.methods:
            try:
                started = time.perf_counter()
                array = responses.normalise(self._call(method, probe))
                self._first_call_us[method] = (time.perf_counter() - started) * 1e6
            except Exception as err:  # an odd probe row must not stop the load
                log.info("could not probe %s: %s", method, err, extra={"model": self.name})
                continue
            observed[method] = (v2_datatype(array.dtype), [-1, *array.shape[1:]])
        return dataclasses.replace(schema, observed=observed)

    def _measure_costs(self, probe: Any) -> costs.CostModel:
        """Time the methods on the probe and on ``max_batch_size`` rows (``costs``)."""
        budget = self.settings.inline_max_us
        if probe is None or budget <= 0 or not self.schema:
            return costs.CostModel(budget)
        n = max(self.settings.max_batch_size, 2 * len(probe))
        if hasattr(probe, "iloc"):
            large = pd.concat([probe] * (n // len(probe) + 1), ignore_index=True).iloc[:n]
        else:
            large = np.resize(probe, (n, *probe.shape[1:]))
        return costs.measure(
            self._call, self.schema.methods, probe, large, budget, self._first_call_us
        )

    def inline(self, methods: tuple[str, ...], rows: int) -> bool:
        """Whether an engine call this size runs on the event loop (see ``costs``).

        Never while a worker process is still rebuilding its engine: waiting for it must
        not block the loop.
        """
        return self.runner is not None and self.costs.inline(methods, rows)

    def _get_batcher(self) -> Any:
        """The batcher of this process, made on first use inside the running event loop."""
        if self.batcher is None and self.settings.batching:
            from predictor.batching import Batcher

            self.batcher = Batcher(
                self._run_methods,
                max_batch_size=self.settings.max_batch_size,
                max_latency_us=self.settings.max_latency_us,
                idle_wait_us=self.settings.idle_wait_us,
                inline=self.inline,
            )
        return self.batcher

    def __getstate__(self) -> dict[str, Any]:
        """Picklable for REST worker processes: lock, batcher and engine are per process."""
        state = super().__getstate__()
        state.update(_lock=None, batcher=None, runner=None, _runner_built=None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
        self._runner_built = threading.Event()
        if self.ready:
            # A REST worker process: rebuild the engine (sessions do not pickle) in the
            # background, so unpickling stays fast for KServe's worker watchdog.
            threading.Thread(target=self._rebuild_runner, daemon=True).start()

    def _rebuild_runner(self) -> None:
        try:
            self.runner = self._build_runner(self.estimator, self._artifact, self._sample)
        except Exception as err:
            log.error("engine rebuild failed in worker: %s", err, extra={"model": self.name})
        finally:
            self._runner_built.set()

    def schema_has_names(self) -> bool:
        return bool(self.schema and self.schema.feature_names)

    def engine_summary(self) -> str:
        if self.runner is None:
            return "none"
        served = self.runner.methods()
        return ",".join(f"{m}={served[m]}" for m in METHODS if m in served)

    # ---------------------------------------------------------- preprocess
    async def preprocess(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        """Turn a V2 ``InferRequest`` or a V1 body into validated input and method names.

        Args:
            payload: ``InferRequest`` (V2 REST and gRPC) or the decoded V1 JSON body.
            headers: Request headers (unused).

        Returns:
            A ``Prepared`` with ``X`` (ndarray or DataFrame) and the methods to run.

        Raises:
            BadRequest: the input does not fit the model; the message says how.
        """
        schema = self._schema()
        if isinstance(payload, InferRequest):
            if payload.request_outputs:
                names = [o.name for o in payload.request_outputs]
                methods = list(dict.fromkeys(names))
                self._check_methods(methods)
            else:
                methods = [self.default_output]  # offered: checked at load
            values = sum(math.prod(t.shape) for t in payload.inputs if _is_shape(t.shape))
            if values <= OFFLOAD_VALUES:  # most requests: no coroutine, no thread
                return Prepared(codec.v2_to_x(payload.inputs, schema), methods, payload)
            x = await self._off_loop(codec.v2_to_x, payload.inputs, schema)
            return Prepared(x, methods, payload)
        params = payload.get("parameters") if isinstance(payload, dict) else None
        method = self.v1_output
        if isinstance(params, dict) and params.get("method") is not None:
            method = params["method"]
            if not isinstance(method, str):
                raise BadRequest(f"parameters.method must be a string, got {brief(method)}")
        self._check_methods([method])
        rows = payload.get("instances") or payload.get("inputs") if isinstance(payload, dict) else 0
        values = len(rows) * self._schema().n_features_or_one if isinstance(rows, list) else 0
        if values <= OFFLOAD_VALUES:
            return Prepared(codec.v1_to_x(payload, schema), [method], None)
        return Prepared(await self._off_loop(codec.v1_to_x, payload, schema), [method], None)

    @staticmethod
    async def _off_loop(function: Any, *args: Any) -> Any:
        """Run ``function`` in a worker thread (large requests)."""
        return await asyncio.get_running_loop().run_in_executor(None, function, *args)

    def _schema(self) -> ModelSchema:
        if self.schema is None:
            raise ModelNotReady(f"model '{self.name}' is still loading")
        return self.schema

    def _check_methods(self, methods: list[str]) -> None:
        offered = self._schema().methods
        for method in methods:
            if method not in offered:
                what = type(self.estimator).__name__
                known = method in METHODS
                raise UnknownOutput(
                    f"output {brief(method)} "
                    + (f"is not offered by this {what}" if known else "is not a known output")
                    + f"; valid outputs: {', '.join(offered)}"
                )

    # ------------------------------------------------------------- predict
    async def predict(
        self,
        payload: Any,
        headers: dict[str, str] | None = None,
        response_headers: dict[str, str] | None = None,
    ) -> Any:
        """Run the requested methods (batched when enabled).

        Calls the cost model expects to be cheaper than a thread hand-off run on the
        event loop; the rest run in a worker thread, so the loop stays responsive.

        Args:
            payload: The ``Prepared`` input from ``preprocess``.
            headers: Request headers (unused).
            response_headers: Unused.

        Returns:
            ``(Prepared, {method: ndarray})``.

        Raises:
            ModelRejectedInput: the estimator refused this input (400).
            InferenceFailed: the estimator failed otherwise (500).
        """
        key = tuple(payload.methods)
        batcher = self._get_batcher()
        if batcher is not None:
            try:
                return payload, await batcher.submit(key, payload.x)
            except Exception:
                # A merged batch failed: rerun this request alone, so only the request
                # that caused the failure gets the error.
                pass
        if self.inline(key, len(payload.x)):
            return payload, self._run_methods(key, payload.x)
        loop = asyncio.get_running_loop()
        return payload, await loop.run_in_executor(None, self._run_methods, key, payload.x)

    def _run_methods(self, methods: tuple[str, ...], x: Any) -> dict[str, Any]:
        if self.runner is None:
            self._runner_built.wait()
            if self.runner is None:
                raise InferenceFailed("the engine could not be built in this worker; see log")
        batch_rows(self.name).observe(len(x))
        results: dict[str, Any] = {}
        if len(methods) > 1 and hasattr(self.runner, "run_many"):
            try:  # outputs of one ONNX graph come from a single call
                shared = self.runner.run_many(methods, x)
                results = {m: self._rows_first(shared[m]) for m in methods}
            except Exception:  # per method below, with per-method error messages
                results = {}
        for method in methods:
            if method in results:
                continue
            try:
                results[method] = self._call(method, x)
            except INPUT_ERRORS as err:
                raise ModelRejectedInput(
                    f"the model rejected the input in {method}: {err}"
                ) from err
            except Exception as err:
                raise InferenceFailed(f"{method} failed: {type(err).__name__}: {err}") from err
        return results

    def _call(self, method: str, x: Any) -> Any:
        return self._rows_first(self.runner.run(method, x))

    @staticmethod
    def _rows_first(result: Any) -> Any:
        if isinstance(result, list):  # multi-output: one array per output -> rows first
            result = np.stack([np.asarray(r) for r in result], axis=1)
        return result

    # --------------------------------------------------------- postprocess
    async def postprocess(
        self,
        result: Any,
        headers: dict[str, str] | None = None,
        response_headers: dict[str, str] | None = None,
    ) -> Any:
        """Shape the results: a V2 ``InferResponse`` or a V1 ``{"predictions": ...}`` dict.

        Args:
            result: ``(Prepared, {method: ndarray})`` from ``predict``.
            headers: Request headers (unused).
            response_headers: Unused.

        Returns:
            ``InferResponse`` for V2; for V1 the raw result array under ``predictions``.
        """
        prepared, results = result
        if prepared.request is None:
            return {"predictions": results[prepared.methods[0]]}
        return responses.build_response(
            results, prepared.methods, self._schema(), prepared.request, self.name, self.version
        )

    # ------------------------------------------------------------ metadata
    def get_input_types(self) -> list[dict[str, Any]]:
        schema = self._schema()
        inputs = []
        if schema.tensor_datatype is not None:
            width = schema.n_features if schema.n_features is not None else -1
            inputs.append(
                {"name": TENSOR_INPUT, "datatype": schema.tensor_datatype, "shape": [-1, width]}
            )
        for feature in schema.features or ():
            inputs.append({"name": feature.name, "datatype": feature.datatype, "shape": [-1]})
        return inputs

    def get_output_types(self) -> list[dict[str, Any]]:
        schema = self._schema()
        return [
            {"name": m, "datatype": schema.output_datatype(m), "shape": schema.output_shape(m)}
            for m in schema.methods
        ]

    def metadata(self) -> dict[str, Any]:
        """V2 model metadata plus a ``parameters`` object (REST only) with the details."""
        schema = self._schema()
        params: dict[str, Any] = {
            "estimator": type(self.estimator).__name__,
            "estimator_type": schema.estimator_type,
            "format": self.format,
            "engine": self.engine_summary(),
            "sklearn_version": sklearn.__version__,
            "saved_sklearn_version": self.saved_sklearn_version,
            "default_output": self.default_output,
        }
        if schema.classes is not None:
            params["classes"] = list(schema.classes)
        if schema.feature_names:
            params["feature_names"] = schema.feature_names
        return {
            "name": self.name,
            "versions": [self.version] if self.version else [],
            "platform": PLATFORM,
            "inputs": self.get_input_types(),
            "outputs": self.get_output_types(),
            "parameters": params,
        }


__all__ = ["InferResponse", "Prepared", "SklearnModel"]
