"""KServe's ``ModelServer`` with our REST routes, gRPC servicer and background loading.

With one REST worker the server listens at once and loads the model in a thread: liveness
answers while the model loads and readiness turns true when it is loaded. With several
workers the model is loaded before the workers start (each gets a copy). A load failure
is logged as one clear line and the process exits with status 1.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kserve import ModelServer
from kserve.protocol.rest.multiprocess.server import RESTServerMultiProcess, RESTServerProcess
from kserve.protocol.rest.server import RESTServer
from uvicorn.importer import import_from_string

from predictor.errors import ModelLoadError
from predictor.grpc_service import Server as GrpcServer
from predictor.http_lane import LaneProtocol
from predictor.lane import InferenceLane
from predictor.rest import Routes
from predictor.settings import Settings

log = logging.getLogger("predictor.server")
APP = "kserve.model_server:app"
EXIT_LOAD_FAILED = 1


class RestServer(RESTServer):
    """KServe's REST server with our routes in front, inference POSTs answered without the
    middleware stack (:mod:`predictor.lane`) and, where they can, without an ASGI cycle
    (:mod:`predictor.http_lane`), no per-request timing logger, and each response's head
    and body written together (:mod:`predictor.http_protocol`)."""

    max_request_bytes: int = 64 * 1024 * 1024

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.config.http = LaneProtocol  # inference POSTs answered from the protocol

    def _add_middlewares(self, app: Any) -> None:
        """Skip KServe's timing middleware: it logs (and costs) on every request."""

    def create_application(self) -> None:
        app = import_from_string(APP)
        if getattr(app.state, "predictor_lane", None) is None:
            super().create_application()
            routes = Routes(self.dataplane, self.max_request_bytes)
            routes.install(app)
            app.state.predictor_lane = InferenceLane(app, routes)
        # uvicorn serves the lane: inference POSTs skip the app's middleware stack
        self.config.app = app.state.predictor_lane


class WorkerPool(RESTServerMultiProcess):
    """KServe's REST worker processes with a watchdog that tolerates slow starts.

    KServe pings each worker every half second with a 5 s timeout, synchronously on the
    event loop, and kills any worker still importing after 5 s (common on a busy node),
    restarting it without our log configuration. Here a worker is pinged only after a
    start-up grace period, from a thread, with a longer timeout; a dead or hung worker is
    restarted with the same log configuration.
    """

    GRACE_SECONDS = 120.0
    PING_TIMEOUT = 30.0
    CHECK_EVERY = 5.0

    def init_processes(self, sockets: list[Any]) -> None:
        self._started: dict[int, float] = {}
        self._next_check = time.monotonic() + self.CHECK_EVERY
        super().init_processes(sockets)
        for index in range(len(self._processes)):
            self._started[index] = time.monotonic()

    async def keep_subprocess_alive(self, sockets: list[Any]) -> None:
        now = time.monotonic()
        if self.should_exit.is_set() or now < self._next_check:
            return
        self._next_check = now + self.CHECK_EVERY
        loop = asyncio.get_running_loop()
        for index, process in enumerate(self._processes):
            if process._process.is_alive():
                if now - self._started.get(index, now) < self.GRACE_SECONDS:
                    continue
                if await loop.run_in_executor(None, process.ping, self.PING_TIMEOUT):
                    continue
                log.warning("REST worker %s did not answer a ping; restarting it", process.pid)
                process.kill()
            await process.wait_for_termination()
            if self.should_exit.is_set():
                return
            log.warning("REST worker %s exited; starting a new one", process.pid)
            fresh = RESTServerProcess(
                sockets, self._rest_server.run, log_config_file=self.log_config_file
            )
            fresh.start()
            self._processes[index] = fresh
            self._started[index] = time.monotonic()


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
            enable_latency_logging=False,
            event_loop=settings.event_loop,
        )
        self.settings = settings
        self._stopping = False
        self.log_config_file = str(log_config_file) if log_config_file else None

    def start(self, models: list[Any]) -> None:
        """Serve ``models`` (loading them in the background when there is one worker)."""
        background = self.workers == 1
        if not background:
            for model in models:
                model.load()
            settle_heap()
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
            multi = WorkerPool(log_config_file=self.log_config_file, **common)
            multi._rest_server = RestServer(**common)
            multi._rest_server.max_request_bytes = self.settings.max_request_bytes
            self._rest_multiprocess_server = multi
            self.servers.append(multi.start())
        else:
            self._rest_server = RestServer(**common)
            self._rest_server.max_request_bytes = self.settings.max_request_bytes
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
        self.register_signal_handler()
        with asyncio.Runner(loop_factory=loop_factory(self.event_loop)) as runner:
            runner.run(self._serve())

    async def _serve(self) -> None:
        # KServe's setup_event_loop() configures asyncio.get_event_loop() before
        # asyncio.run() makes a different loop, so neither its exception handler nor
        # --max_asyncio_workers reached the loop that serves; set both on the running loop.
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(self._custom_exception_handler or self.default_exception_handler)
        workers = self.max_asyncio_workers or min(32, (os.cpu_count() or 1) + 4)
        loop.set_default_executor(
            concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="infer")
        )
        log.info(
            "serving on the %s event loop, %d worker threads",
            type(loop).__module__.split(".")[0],
            workers,
            extra={"event_loop": self.event_loop},
        )
        await asyncio.gather(*self.servers)

    async def _load_in_background(self, models: list[Any]) -> None:
        """Load in a daemon thread: a SIGTERM during a long load stops the process at once."""
        loop = asyncio.get_running_loop()
        for model in models:
            done: asyncio.Future[None] = loop.create_future()

            def work(model: Any = model, done: asyncio.Future[None] = done) -> None:
                try:
                    model.load()
                except BaseException as err:  # reported on the loop, then exit 1
                    loop.call_soon_threadsafe(done.set_exception, err)
                else:
                    loop.call_soon_threadsafe(done.set_result, None)

            threading.Thread(target=work, name=f"load-{model.name}", daemon=True).start()
            while not done.done():
                if self._stopping:  # leave the daemon thread behind
                    return
                await asyncio.wait([done], timeout=0.25)
            try:
                done.result()
            except Exception as err:
                fail_load(err, model.name)
        settle_heap()

    def stop(self, sig: int) -> None:
        """Stop serving; a load still running is abandoned."""
        self._stopping = True
        super().stop(sig)


def loop_factory(choice: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The event loop to serve on: asyncio's own, uvloop, or (``auto``) uvloop if installed.

    KServe runs its servers with ``asyncio.run``, so uvicorn's ``--event-loop`` never took
    effect with one worker. asyncio's loop is the default: on the benchmark machine uvloop
    was no faster for this predictor and had a worse p99 for the constant-response ceiling.
    """
    if choice == "asyncio":
        return None
    try:
        import uvloop
    except ImportError as err:
        if choice == "uvloop":
            raise RuntimeError("--event_loop uvloop: uvloop is not installed") from err
        return None
    return uvloop.new_event_loop  # type: ignore[no-any-return]


def settle_heap() -> None:
    """Move everything alive after the load out of the garbage collector's way.

    The interpreter, KServe, FastAPI and the model leave a few hundred thousand objects
    that live as long as the process; without this, each full collection walks them all
    and stalls the event loop for 100-160 ms (seen as the p99 of the benchmark).
    ``gc.freeze`` keeps them out of every later collection (and, before workers fork, out
    of copy-on-write page faults).
    """
    gc.collect()
    gc.freeze()


def fail_load(err: BaseException, model_name: str, what: str = "model failed to load") -> None:
    """Log why the model did not load (or the server did not start), then exit 1 at once."""
    kind = type(err).__name__
    if isinstance(err, ModelLoadError):
        log.error("%s: %s", what, err, extra={"model": model_name, "error": kind})
    else:
        log.error(
            "%s: %s: %s",
            what,
            kind,
            err,
            extra={"model": model_name, "error": kind},
            exc_info=err,
        )
    for handler in logging.getLogger().handlers:
        handler.flush()
    sys.stderr.flush()
    os._exit(EXIT_LOAD_FAILED)
