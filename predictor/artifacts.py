"""Finding, verifying and loading model artifacts.

Loading a joblib or pickle file runs whatever code the file names: treat model files as
code. The safe path is a ``.skops`` artifact (only trusted types are rebuilt) and a pinned
sha256 digest (``--model_sha256`` or a ``<artifact>.sha256`` file next to it).
"""

from __future__ import annotations

import hashlib
import logging
import pickle
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import sklearn
from sklearn.base import BaseEstimator
from sklearn.exceptions import InconsistentVersionWarning

from predictor.errors import (
    AmbiguousArtifact,
    ArtifactNotFound,
    DigestMismatch,
    ModelLoadError,
    UnsupportedFormat,
    UntrustedTypes,
)

log = logging.getLogger(__name__)

PICKLE_SUFFIXES = (".joblib", ".pkl", ".pickle")
SKOPS_SUFFIXES = (".skops",)
ONNX_SUFFIXES = (".onnx",)
MODEL_SUFFIXES = PICKLE_SUFFIXES + SKOPS_SUFFIXES
DIGEST_SUFFIX = ".sha256"
SAMPLE_NAMES = ("sample.csv", "sample.parquet")


@dataclass(frozen=True)
class Artifact:
    """One model file and what lies next to it."""

    path: Path
    onnx_path: Path | None = None

    @property
    def format(self) -> str:
        suffix = self.path.suffix.lower()
        if suffix in SKOPS_SUFFIXES:
            return "skops"
        if suffix in ONNX_SUFFIXES:
            return "onnx"
        return "joblib" if suffix == ".joblib" else "pickle"


def find_artifact(location: Path) -> Artifact:
    """The single artifact at ``location`` (a file, or a directory holding exactly one)."""
    if location.is_file():
        if location.suffix.lower() not in MODEL_SUFFIXES + ONNX_SUFFIXES:
            raise UnsupportedFormat(
                f"model file {location} has extension {location.suffix!r}; expected one of "
                f"{', '.join(MODEL_SUFFIXES + ONNX_SUFFIXES)}"
            )
        return Artifact(location, _onnx_beside(location))
    if not location.is_dir():
        raise ArtifactNotFound(f"model location {location} does not exist")
    candidates = sorted(p for p in location.iterdir() if p.suffix.lower() in MODEL_SUFFIXES)
    if len(candidates) > 1:
        names = ", ".join(p.name for p in candidates)
        raise AmbiguousArtifact(
            f"found {len(candidates)} model artifacts in {location}: {names}; "
            "keep exactly one or pass the file's path as --model_dir"
        )
    if candidates:
        return Artifact(candidates[0], _onnx_beside(candidates[0]))
    onnx = sorted(p for p in location.iterdir() if p.suffix.lower() in ONNX_SUFFIXES)
    if len(onnx) == 1:
        return Artifact(onnx[0], onnx[0])
    present = ", ".join(sorted(p.name for p in location.iterdir())) or "nothing"
    raise ArtifactNotFound(
        f"no model artifact ({', '.join(MODEL_SUFFIXES + ONNX_SUFFIXES)}) in {location}; "
        f"found: {present}"
    )


def _onnx_beside(path: Path) -> Path | None:
    candidate = path.parent / "model.onnx"
    return candidate if candidate.is_file() and candidate != path else None


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_digest(path: Path, pinned: str | None) -> str | None:
    """Check the artifact against ``pinned`` and ``<artifact>.sha256``; return the digest."""
    sidecar = path.with_name(path.name + DIGEST_SUFFIX)
    expected: list[tuple[str, str]] = []
    if pinned:
        expected.append(("--model_sha256", pinned.strip().lower()))
    if sidecar.is_file():
        words = sidecar.read_text().split()
        if not words:
            raise DigestMismatch(f"{sidecar} is empty; expected a sha256 hex digest")
        expected.append((str(sidecar), words[0].lower()))
    if not expected:
        return None
    actual = sha256_of(path)
    for source, digest in expected:
        if digest != actual:
            raise DigestMismatch(
                f"sha256 of {path} is {actual} but {source} pins {digest}; "
                "refusing to load a file that may have been tampered with"
            )
    return actual


def load_estimator(artifact: Artifact, trusted_types: list[str]) -> tuple[Any, str | None]:
    """Deserialize the estimator; returns it (``None`` for ONNX only) and the version of
    scikit-learn it was saved with, when known."""
    fmt = artifact.format
    if fmt == "onnx":
        return None, None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", InconsistentVersionWarning)
        if fmt == "skops":
            estimator = _load_skops(artifact.path, trusted_types)
        else:
            estimator = _load_pickle(artifact.path, fmt)
    saved = None
    for warning in caught:
        if isinstance(warning.message, InconsistentVersionWarning):
            saved = str(warning.message.original_sklearn_version)
    if saved is None and isinstance(estimator, BaseEstimator):
        saved = sklearn.__version__  # no mismatch warning: saved with the running version
    return estimator, saved


def _load_pickle(path: Path, fmt: str) -> Any:
    try:
        if fmt == "joblib":
            return joblib.load(path)
        with path.open("rb") as handle:
            return pickle.load(handle)
    except Exception as err:
        raise ModelLoadError(
            f"could not load {path} with {fmt}: {type(err).__name__}: {err}"
        ) from err


def _load_skops(path: Path, trusted_types: list[str]) -> Any:
    from skops import io as skops_io

    try:
        untrusted = skops_io.get_untrusted_types(file=path)
    except Exception as err:
        raise ModelLoadError(f"{path} is not a readable .skops file: {err}") from err
    refused = sorted(set(untrusted) - set(trusted_types))
    if refused:
        raise UntrustedTypes(
            f"{path} holds types outside skops' trusted set: {', '.join(refused)}. "
            "Loading them may run their code; if you trust this artifact, pass "
            f"--trusted_types {','.join(refused)} (env PREDICTOR_TRUSTED_TYPES)"
        )
    try:
        return skops_io.load(path, trusted=sorted(untrusted))
    except Exception as err:
        raise ModelLoadError(f"could not load {path} with skops: {err}") from err


def find_sample(artifact: Artifact) -> Path | None:
    """A user-supplied probe sample next to the artifact (``sample.csv``), if any."""
    for name in SAMPLE_NAMES:
        candidate = artifact.path.parent / name
        if candidate.is_file():
            return candidate
    return None


def read_sample(path: Path, feature_names: list[str] | None) -> Any:
    """The sample rows as a DataFrame in the model's column order."""
    import pandas as pd

    try:
        frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except Exception as err:
        raise ModelLoadError(f"could not read sample file {path}: {err}") from err
    if feature_names is not None:
        missing = [n for n in feature_names if n not in frame.columns]
        if missing:
            raise ModelLoadError(
                f"sample file {path} lacks the model's features: {', '.join(missing)}"
            )
        frame = frame[feature_names]
    return frame
