"""KServe's ``ModelServer`` with our REST routes, gRPC servicer and background loading.

With one REST worker the server listens at once and loads the model in a thread: liveness
answers while the model loads and readiness turns true when it is loaded. With several
workers the model is loaded before the workers start (each gets a copy). A load failure
is logged as one clear line and the process exits with status 1.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from pathlib import Path
from typing import Any

from kserve import ModelServer
from kserve.protocol.rest.multiprocess.server import RESTServerMultiProcess
from kserve.protocol.rest.server import RESTServer
from uvicorn.importer import import_from_string

from predictor.errors import ModelLoadError
from predictor.grpc_service import Server as GrpcServer
from predictor.rest import Routes
from predictor.settings import Settings

log = logging.getLogger("predictor.server")
APP = "kserve.model_server:app"
EXIT_LOAD_FAILED = 1


class RestServer(RESTServer):
    """KServe's REST server with our routes in front and no per-request timing logger."""

    def _add_middlewares(self, app: Any) -> None:
        """Skip KServe's timing middleware: it logs (and costs) on every request."""

    def create_application(self) -> None:
        app = import_from_string(APP)
        if getattr(app.state, "predictor_routes", False):
            return
        super().create_application()
        Routes(self.dataplane).install(app)
        app.state.predictor_routes = True


class PredictorServer(ModelServer):
    """``ModelServer`` configured from our settings."""

    def __init__(self, settings: Settings, log_config_file: Path | None = None) -> None:
        super().__init__(
            http_port=settings.http_port,
            grpc_port=settings.grpc_port,
            workers=settings.workers,
            max_threads=settings.max_threads,
            max_asyncio_workers=settings.max_asyncio_workers,
            enable_grpc=settings.enable_grpc,
            enable_docs_url=False,
            enable_latency_logging=False,
        )
        self.settings = settings
        self.log_config_file = str(log_config_file) if log_config_file else None

    def start(self, models: list[Any]) -> None:
        """Serve ``models`` (loading them in the background when there is one worker)."""
        background = self.workers == 1
        if not background:
            for model in models:
                model.load()
        for model in models:
            self.register_model(model)
            model.enable_latency_logging = False
        common: dict[str, Any] = {
            "app": APP,
            "data_plane": self.dataplane,
            "model_repository_extension": self.model_repository_extension,
            "http_port": self.http_port,
            "workers": self.workers,
            "grace_period": self.grace_period,
            "event_loop": self.event_loop,
            "timeout_keep_alive": self.timeout_keep_alive,
        }
        if self.workers > 1:
            multi = RESTServerMultiProcess(log_config_file=self.log_config_file, **common)
            multi._rest_server = RestServer(**common)
            self._rest_multiprocess_server = multi
            self.servers.append(multi.start())
        else:
            self._rest_server = RestServer(**common)
            self.servers.append(self._rest_server.start())
        if self.enable_grpc:
            limit = self.settings.grpc_max_message_bytes
            self._grpc_server = GrpcServer(
                self.grpc_port,
                self.dataplane,
                self.model_repository_extension,
                kwargs={
                    "grpc_max_send_message_length": limit,
                    "grpc_max_receive_message_length": limit,
                },
                grace_period=self.grace_period,
            )
            self.servers.append(self._grpc_server.start(self.max_threads))
        if background:
            self.servers.append(self._load_in_background(models))
        self.setup_event_loop()
        self.register_signal_handler()
        asyncio.run(self._serve())

    async def _load_in_background(self, models: list[Any]) -> None:
        loop = asyncio.get_running_loop()
        for model in models:
            try:
                await loop.run_in_executor(None, model.load)
            except Exception as err:
                fail_load(err, model.name)


def fail_load(err: BaseException, model_name: str) -> None:
    """Log why the model did not load, then exit with status 1 at once."""
    kind = type(err).__name__
    if isinstance(err, ModelLoadError):
        log.error("model failed to load: %s", err, extra={"model": model_name, "error": kind})
    else:
        log.error(
            "model failed to load: %s: %s",
            kind,
            err,
            extra={"model": model_name, "error": kind},
            exc_info=err,
        )
    for handler in logging.getLogger().handlers:
        handler.flush()
    sys.stderr.flush()
    os._exit(EXIT_LOAD_FAILED)
