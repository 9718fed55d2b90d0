"""Shared fixtures: models trained per session and real servers started on free ports."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import models
from server import Server

MODELS: dict[str, Callable[[Path], Path]] = {
    "lr": lambda d: models.write_joblib(models.lr_pipeline(), d),
    "rf": lambda d: models.write_joblib(models.random_forest(), d),
    "ridge": lambda d: models.write_pickle(models.ridge(), d),
    "house": lambda d: models.write_house(d),
    "hgb": lambda d: models.write_skops(models.hist_gradient_boosting(), d),
}

# HistGradientBoosting's tree predictor is outside skops' default trusted set.
HGB_TRUSTED = "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"
SERVER_OPTIONS: dict[str, dict[str, Any]] = {"hgb": {"trusted_types": HGB_TRUSTED}}


@pytest.fixture(scope="session")
def model_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each test model trained once, in its own directory (the server's --model_dir)."""
    root = tmp_path_factory.mktemp("models")
    dirs = {}
    for name, write in MODELS.items():
        write(root / name)
        dirs[name] = root / name
    return dirs


@pytest.fixture(scope="session")
def start_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Server]]:
    """Start a server; every server started is stopped at the end of the session."""
    started: list[Server] = []
    logs = tmp_path_factory.mktemp("logs")

    def start(model_dir: Path, name: str, wait: bool = True, **options: Any) -> Server:
        server = Server(model_dir, name, logs / f"{name}-{len(started)}.log", **options)
        started.append(server)
        return server.wait_ready() if wait else server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def servers(model_dirs: dict[str, Path], start_server: Callable[..., Server]) -> dict[str, Server]:
    """One running server per test model, started together (they load in parallel)."""
    running = {
        name: start_server(path, name, wait=False, **SERVER_OPTIONS.get(name, {}))
        for name, path in model_dirs.items()
    }
    return {name: server.wait_ready() for name, server in running.items()}


@pytest.fixture(scope="module")
def rf(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The test forest loaded in-process (6 unnamed features, classes 0..2), batching on
    as by default; one per test module."""
    from predictor.model import SklearnModel
    from predictor.settings import Settings

    directory = tmp_path_factory.mktemp("rf")
    models.write_joblib(models.random_forest(), directory)
    model = SklearnModel(Settings(model_dir=directory, model_name="rf"))
    assert model.load()
    return model
