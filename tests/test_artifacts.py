"""predictor.artifacts: finding, digest-checking and loading model files, reading samples."""

from __future__ import annotations

import hashlib
import pickle
import re
from pathlib import Path

import models
import numpy as np
import pandas as pd
import pytest
import sklearn
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import Ridge
from threadpoolctl import threadpool_limits

from predictor.artifacts import (
    Artifact,
    find_artifact,
    find_sample,
    load_estimator,
    read_sample,
    sha256_of,
    verify_digest,
)
from predictor.errors import (
    AmbiguousArtifact,
    ArtifactNotFound,
    DigestMismatch,
    ModelLoadError,
    UnsupportedFormat,
    UntrustedTypes,
)

HGB_TREE = "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"


@pytest.fixture(scope="module")
def ridge() -> Ridge:
    return models.ridge()


@pytest.fixture(scope="module")
def hgb() -> HistGradientBoostingClassifier:
    with threadpool_limits(1):  # OpenMP on a busy machine is far slower than one thread
        return models.hist_gradient_boosting()


def _touch(directory: Path, *names: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name in names:
        (directory / name).write_bytes(b"x")


# ------------------------------------------------------------------ find_artifact


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("model.joblib", "joblib"),
        ("model.pkl", "pickle"),
        ("model.pickle", "pickle"),
        ("model.skops", "skops"),
        ("model.onnx", "onnx"),
        ("MODEL.JOBLIB", "joblib"),
        ("Model.Skops", "skops"),
    ],
)
def test_find_artifact_single_file_path(tmp_path: Path, name: str, fmt: str) -> None:
    """A file path is the artifact; its extension (any case) gives the format."""
    _touch(tmp_path, name)
    artifact = find_artifact(tmp_path / name)
    assert artifact.path == tmp_path / name
    assert artifact.format == fmt


@pytest.mark.parametrize("name", ["model.joblib", "model.pkl", "model.skops"])
def test_find_artifact_directory_with_one(tmp_path: Path, name: str) -> None:
    """Side files (digest, sample, docs) do not count as artifacts."""
    _touch(tmp_path, name, name + ".sha256", "sample.csv", "README.md")
    artifact = find_artifact(tmp_path)
    assert artifact == Artifact(tmp_path / name, None)


def test_find_artifact_two_is_ambiguous_naming_both(tmp_path: Path) -> None:
    _touch(tmp_path, "b.pkl", "a.joblib")
    with pytest.raises(AmbiguousArtifact) as caught:
        find_artifact(tmp_path)
    message = str(caught.value)
    assert f"found 2 model artifacts in {tmp_path}: a.joblib, b.pkl" in message
    assert "--model_dir" in message


def test_find_artifact_none_lists_what_is_there(tmp_path: Path) -> None:
    _touch(tmp_path, "weights.bin", "README.md")
    with pytest.raises(ArtifactNotFound) as caught:
        find_artifact(tmp_path)
    message = str(caught.value)
    assert f"no model artifact (.joblib, .pkl, .pickle, .skops, .onnx) in {tmp_path}" in message
    assert message.endswith("found: README.md, weights.bin")


def test_find_artifact_empty_directory(tmp_path: Path) -> None:
    with pytest.raises(ArtifactNotFound, match=r"found: nothing$"):
        find_artifact(tmp_path)


def test_find_artifact_missing_location(tmp_path: Path) -> None:
    with pytest.raises(ArtifactNotFound, match=r"model location .*nowhere does not exist"):
        find_artifact(tmp_path / "nowhere")


@pytest.mark.parametrize("name", ["model.bin", "model.h5", "model", "model.joblib.sha256"])
def test_find_artifact_bad_extension(tmp_path: Path, name: str) -> None:
    """A file path with another extension is refused, listing the accepted ones."""
    _touch(tmp_path, name)
    with pytest.raises(UnsupportedFormat) as caught:
        find_artifact(tmp_path / name)
    suffix = Path(name).suffix
    assert f"has extension {suffix!r}" in str(caught.value)
    assert "expected one of .joblib, .pkl, .pickle, .skops, .onnx" in str(caught.value)


@pytest.mark.parametrize("as_file", [False, True], ids=["dir", "file"])
def test_find_artifact_model_onnx_beside(tmp_path: Path, as_file: bool) -> None:
    """model.onnx next to the sklearn artifact is picked up; the artifact stays the model."""
    _touch(tmp_path, "model.joblib", "model.onnx")
    artifact = find_artifact(tmp_path / "model.joblib" if as_file else tmp_path)
    assert artifact.path == tmp_path / "model.joblib"
    assert artifact.format == "joblib"
    assert artifact.onnx_path == tmp_path / "model.onnx"


def test_find_artifact_other_onnx_name_is_not_beside(tmp_path: Path) -> None:
    _touch(tmp_path, "model.joblib", "converted.onnx")
    assert find_artifact(tmp_path).onnx_path is None


def test_find_artifact_onnx_alone_in_directory(tmp_path: Path) -> None:
    _touch(tmp_path, "model.onnx")
    artifact = find_artifact(tmp_path)
    assert (artifact.path, artifact.onnx_path, artifact.format) == (
        tmp_path / "model.onnx",
        tmp_path / "model.onnx",
        "onnx",
    )


def test_find_artifact_two_onnx_alone_is_not_found(tmp_path: Path) -> None:
    _touch(tmp_path, "a.onnx", "b.onnx")
    with pytest.raises(ArtifactNotFound, match=r"found: a\.onnx, b\.onnx"):
        find_artifact(tmp_path)


# ------------------------------------------------------------------ verify_digest


@pytest.fixture
def artifact_file(tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "model.pkl"
    path.write_bytes(b"model bytes " * 1000)
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def test_sha256_of_matches_hashlib(artifact_file: tuple[Path, str]) -> None:
    path, digest = artifact_file
    assert sha256_of(path) == digest


def test_verify_digest_nothing_to_check(artifact_file: tuple[Path, str]) -> None:
    """No pin and no sidecar: nothing is checked and no digest is returned."""
    path, _ = artifact_file
    assert verify_digest(path, None) is None
    assert verify_digest(path, "") is None


@pytest.mark.parametrize("transform", [str.lower, str.upper], ids=["lowercase", "uppercase"])
def test_verify_digest_sidecar_ok(artifact_file: tuple[Path, str], transform) -> None:
    """`<artifact>.sha256` in sha256sum format, any case, passes and the digest is returned."""
    path, digest = artifact_file
    models.write_digest(path, transform(digest))
    assert verify_digest(path, None) == digest


def test_verify_digest_sidecar_digest_only(artifact_file: tuple[Path, str]) -> None:
    path, digest = artifact_file
    path.with_name("model.pkl.sha256").write_text(digest)
    assert verify_digest(path, None) == digest


def test_verify_digest_sidecar_mismatch(artifact_file: tuple[Path, str]) -> None:
    path, digest = artifact_file
    sidecar = models.write_digest(path, "0" * 64)
    with pytest.raises(DigestMismatch) as caught:
        verify_digest(path, None)
    message = str(caught.value)
    assert f"sha256 of {path} is {digest} but {sidecar} pins {'0' * 64}" in message
    assert "tampered" in message


@pytest.mark.parametrize("content", ["", "  \n"], ids=["empty", "blank"])
def test_verify_digest_sidecar_empty(artifact_file: tuple[Path, str], content: str) -> None:
    path, _ = artifact_file
    path.with_name("model.pkl.sha256").write_text(content)
    with pytest.raises(DigestMismatch, match=r"model\.pkl\.sha256 is empty; expected a sha256"):
        verify_digest(path, None)


@pytest.mark.parametrize(
    "transform",
    [str.lower, str.upper, lambda d: f"  {d}\n"],
    ids=["lowercase", "uppercase", "whitespace"],
)
def test_verify_digest_pinned_ok(artifact_file: tuple[Path, str], transform) -> None:
    path, digest = artifact_file
    assert verify_digest(path, transform(digest)) == digest


def test_verify_digest_pinned_mismatch(artifact_file: tuple[Path, str]) -> None:
    path, digest = artifact_file
    with pytest.raises(DigestMismatch) as caught:
        verify_digest(path, "AB" * 32)
    assert f"sha256 of {path} is {digest} but --model_sha256 pins {'ab' * 32}" in str(caught.value)


def test_verify_digest_pinned_ok_sidecar_mismatch(artifact_file: tuple[Path, str]) -> None:
    """Both are checked: a correct pin does not excuse a wrong sidecar."""
    path, digest = artifact_file
    sidecar = models.write_digest(path, "f" * 64)
    with pytest.raises(DigestMismatch, match=re.escape(f"{sidecar} pins {'f' * 64}")):
        verify_digest(path, digest)


# ------------------------------------------------------------------ load_estimator


@pytest.mark.parametrize(
    "write",
    [models.write_joblib, models.write_pickle, models.write_skops],
    ids=["joblib", "pickle", "skops"],
)
def test_load_estimator_round_trip(tmp_path: Path, ridge: Ridge, write) -> None:
    """Every format loads an equivalent model, saved with the running scikit-learn."""
    path = write(ridge, tmp_path)
    estimator, saved = load_estimator(find_artifact(path), [])
    assert type(estimator) is Ridge
    np.testing.assert_array_equal(estimator.coef_, ridge.coef_)
    assert saved == sklearn.__version__


def test_load_estimator_skops_untrusted_types_refused(
    tmp_path: Path, hgb: HistGradientBoostingClassifier
) -> None:
    """The message lists the refused types and says how to trust them."""
    path = models.write_skops(hgb, tmp_path)
    with pytest.raises(UntrustedTypes) as caught:
        load_estimator(find_artifact(path), ["some.other.Type"])
    message = str(caught.value)
    assert f"{path} holds types outside skops' trusted set: {HGB_TREE}." in message
    assert f"--trusted_types {HGB_TREE} (env PREDICTOR_TRUSTED_TYPES)" in message


def test_load_estimator_skops_trusted_types_allow(
    tmp_path: Path, hgb: HistGradientBoostingClassifier
) -> None:
    path = models.write_skops(hgb, tmp_path)
    estimator, saved = load_estimator(find_artifact(path), [HGB_TREE, "unused.Extra"])
    assert isinstance(estimator, HistGradientBoostingClassifier)
    x = np.random.default_rng(0).normal(size=(20, 4))
    np.testing.assert_array_equal(estimator.predict_proba(x), hgb.predict_proba(x))
    assert saved == sklearn.__version__


@pytest.mark.parametrize(
    "write", [models.write_joblib, models.write_pickle], ids=["joblib", "pickle"]
)
def test_load_estimator_reports_saved_version(tmp_path: Path, ridge: Ridge, write) -> None:
    """A model saved with another scikit-learn is loaded and that version reported."""
    path = write(ridge, tmp_path)
    running = sklearn.__version__.encode()
    fake = re.sub(rb"\d", b"0", running)  # a different version of the same length
    assert fake != running
    raw = path.read_bytes()
    assert raw.count(running) == 1
    path.write_bytes(raw.replace(running, fake))
    estimator, saved = load_estimator(find_artifact(path), [])
    assert type(estimator) is Ridge
    assert saved == fake.decode()


def test_load_estimator_non_estimator_has_no_version(tmp_path: Path) -> None:
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps({"not": "an estimator"}))
    assert load_estimator(find_artifact(path), []) == ({"not": "an estimator"}, None)


def test_load_estimator_onnx_only_is_not_read(tmp_path: Path) -> None:
    """An ONNX artifact has no estimator (the file is not opened here)."""
    _touch(tmp_path, "model.onnx")
    assert load_estimator(find_artifact(tmp_path), []) == (None, None)


@pytest.mark.parametrize(
    ("name", "content", "fragment"),
    [
        ("model.joblib", b"garbage", "could not load {path} with joblib: "),
        ("model.pkl", b"garbage", "could not load {path} with pickle: UnpicklingError"),
        (
            "model.pickle",
            b"cnot_a_module_xyz\nThing\n.",
            "with pickle: ModuleNotFoundError: No module named 'not_a_module_xyz'",
        ),
        ("model.skops", b"garbage", "{path} is not a readable .skops file: "),
        ("model.pkl", b"", "could not load {path} with pickle: EOFError"),
    ],
    ids=["joblib", "pickle", "missing-module", "skops", "empty"],
)
def test_load_estimator_corrupt_file(
    tmp_path: Path, name: str, content: bytes, fragment: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ModelLoadError) as caught:
        load_estimator(find_artifact(path), [])
    assert fragment.format(path=path) in str(caught.value)
    assert caught.value.__cause__ is not None


# ------------------------------------------------------------------ samples


def test_find_sample(tmp_path: Path) -> None:
    _touch(tmp_path, "model.joblib")
    artifact = find_artifact(tmp_path)
    assert find_sample(artifact) is None
    _touch(tmp_path, "sample.parquet")
    assert find_sample(artifact) == tmp_path / "sample.parquet"
    _touch(tmp_path, "sample.csv")
    assert find_sample(artifact) == tmp_path / "sample.csv"  # csv first


def test_read_sample_in_model_column_order(tmp_path: Path) -> None:
    """Columns are put in the model's order; extra columns are dropped; dtypes kept."""
    path = tmp_path / "sample.csv"
    pd.DataFrame(
        {"location": ["north", "east"], "extra": [1, 2], "area": [50.5, 80.0], "bedrooms": [2, 3]}
    ).to_csv(path, index=False)
    frame = read_sample(path, models.HOUSE_FEATURES)
    assert list(frame.columns) == ["area", "bedrooms", "location"]
    assert frame["bedrooms"].tolist() == [2, 3]
    assert frame["bedrooms"].dtype.kind == "i"
    assert frame["area"].dtype.kind == "f"
    assert frame["location"].tolist() == ["north", "east"]


def test_read_sample_without_feature_names_keeps_file_order(tmp_path: Path) -> None:
    path = tmp_path / "sample.csv"
    path.write_text("b,a\n1,2\n3,4\n")
    frame = read_sample(path, None)
    assert list(frame.columns) == ["b", "a"]
    assert frame.to_numpy().tolist() == [[1, 2], [3, 4]]


def test_read_sample_missing_columns(tmp_path: Path) -> None:
    path = tmp_path / "sample.csv"
    path.write_text("bedrooms,other\n1,2\n")
    with pytest.raises(ModelLoadError) as caught:
        read_sample(path, models.HOUSE_FEATURES)
    assert str(caught.value) == f"sample file {path} lacks the model's features: area, location"


def test_read_sample_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "sample.csv"
    path.write_text("")
    with pytest.raises(ModelLoadError, match=re.escape(f"could not read sample file {path}: ")):
        read_sample(path, None)
