"""Every option of the predictor, read once at start-up and passed down.

Each option is a command-line flag (``--model_dir``) and an environment variable
(``PREDICTOR_MODEL_DIR``); a flag wins over the variable, the variable over the default.
Nothing in a request path reads the environment.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

ENV_PREFIX = "PREDICTOR_"

EngineMode = Literal["auto", "onnx", "sklearn"]
Method = Literal["predict", "predict_proba", "predict_log_proba", "decision_function", "transform"]


class Settings(BaseSettings):
    """The predictor's configuration (see ``python -m predictor --help``)."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    # --- the model ---
    model_dir: Path = Field(
        Path("/mnt/models"),
        description="Directory holding exactly one model artifact, or the artifact's path.",
    )
    model_name: str = Field("model", description="Name of the model on the endpoint paths.")
    model_sha256: str | None = Field(
        None,
        description="Expected sha256 of the artifact; refuse to load on mismatch. "
        "A '<artifact>.sha256' file next to the artifact is checked too.",
    )
    trusted_types: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Types to trust when loading a .skops artifact beyond skops' safe set "
        "(comma-separated). Trusting a type lets the artifact run its code.",
    )
    default_output: Method = Field(
        "predict", description="V2 output computed when a request asks for none."
    )
    v1_output: Method = Field(
        "predict",
        description="Method behind V1 ':predict' unless the request says "
        "'parameters': {'method': ...}.",
    )
    # --- engine and batching (see predictor.engine / predictor.batching) ---
    engine: EngineMode = Field(
        "auto", description="auto: ONNX Runtime when conversion and parity pass; onnx; sklearn."
    )
    batching: bool = Field(True, description="Merge concurrent requests into one engine call.")
    max_batch_size: int = Field(64, ge=1, description="Most rows one merged engine call holds.")
    max_latency_us: int = Field(
        2000, ge=0, description="Longest a request waits for others to join its batch (µs)."
    )
    idle_wait_us: int = Field(
        200,
        ge=0,
        description="Most idle time a batch on the event loop spends waiting for more "
        "requests, while such waits keep gaining requests (µs); 0: never.",
    )
    inline_max_us: int = Field(
        300,
        ge=0,
        description="Engine calls expected to take at most this (µs, measured at load) run "
        "on the event loop instead of a worker thread; 0: always a worker thread.",
    )
    # --- server (passed to KServe's ModelServer) ---
    http_port: int = Field(8080, ge=0, le=65535, description="HTTP port (V1 and V2 REST).")
    grpc_port: int = Field(8081, ge=0, le=65535, description="gRPC port (V2).")
    enable_grpc: bool = Field(True, description="Serve the V2 gRPC API.")
    workers: int = Field(1, ge=1, description="REST worker processes.")
    max_threads: int = Field(4, ge=1, description="gRPC server threads.")
    max_asyncio_workers: int | None = Field(
        None, description="Threads that run inference off the event loop (default cores + 4)."
    )
    event_loop: Literal["asyncio", "uvloop", "auto"] = Field(
        "asyncio",
        description="Event loop: asyncio's own, uvloop, or auto (uvloop when installed).",
    )
    max_request_bytes: int = Field(
        64 * 1024 * 1024, ge=1024, description="Largest REST request body (413 above it)."
    )
    grpc_max_message_bytes: int = Field(
        64 * 1024 * 1024, ge=1024, description="Largest gRPC message sent or received."
    )
    log_level: str = Field("INFO", description="Log level (DEBUG, INFO, WARNING, ERROR).")
    log_format: Literal["json", "text"] = Field("json", description="Log line format.")

    @field_validator("trusted_types", mode="before")
    @classmethod
    def _split_types(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("log_level")
    @classmethod
    def _upper(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            levels = "DEBUG, INFO, WARNING, ERROR or CRITICAL"
            raise ValueError(f"log_level must be {levels}, got {value!r}")
        return level


def build_parser() -> argparse.ArgumentParser:
    """A parser with one ``--flag`` per setting; unknown flags are left for KServe."""
    parser = argparse.ArgumentParser(
        prog="predictor",
        description="Serve a scikit-learn model with KServe's ModelServer (V1/V2, REST/gRPC). "
        f"Every flag is also an environment variable: {ENV_PREFIX}<FLAG IN CAPITALS>.",
    )
    for name, field in Settings.model_fields.items():
        default = field.default_factory() if field.default_factory else field.default  # type: ignore[call-arg]
        parser.add_argument(
            f"--{name}",
            dest=name,
            default=None,
            help=f"{field.description} [env {ENV_PREFIX}{name.upper()}; default {default!r}]",
        )
    return parser


def load_settings(argv: list[str] | None = None) -> tuple[Settings, list[str]]:
    """Settings from flags, then environment, then defaults; returns the unknown flags too."""
    namespace, rest = build_parser().parse_known_args(argv)
    given = {key: value for key, value in vars(namespace).items() if value is not None}
    return Settings(**given), rest
