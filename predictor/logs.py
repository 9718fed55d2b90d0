"""Logging: one line per event, JSON by default; no per-request line at INFO.

KServe's access and latency loggers are turned down to WARNING; errors are logged once,
by the transport glue, with the model, protocol, status and error kind as fields.
"""

from __future__ import annotations

import contextlib
import json
import logging
import logging.config
import time
from pathlib import Path
from typing import Any

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "color_message"}


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "msg", ...extra fields}`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = value if isinstance(value, str | int | float | bool) else str(value)
        if record.exc_info and record.levelno >= logging.ERROR:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def log_config(level: str, fmt: str) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for our loggers, KServe's and uvicorn's."""
    formatter = (
        {"()": f"{__name__}.JsonFormatter"}
        if fmt == "json"
        else {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}
    )
    quiet = "WARNING" if level in ("DEBUG", "INFO") else level
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"line": formatter},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "line",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["stderr"], "level": level},
        "loggers": {
            "predictor": {"level": level},
            "kserve": {"handlers": ["stderr"], "level": level, "propagate": False},
            "kserve.trace": {"handlers": ["stderr"], "level": quiet, "propagate": False},
            "uvicorn": {"handlers": ["stderr"], "level": level, "propagate": False},
            "uvicorn.error": {"level": level},
            "uvicorn.access": {"handlers": ["stderr"], "level": quiet, "propagate": False},
        },
    }


def configure(level: str, fmt: str) -> Path:
    """Apply the config here and write it to a file for REST worker processes."""
    config = log_config(level, fmt)
    logging.config.dictConfig(config)
    path = Path("/tmp") / f"sklearn-predictor-logging-{level}-{fmt}.json"
    with contextlib.suppress(OSError):  # read-only /tmp: workers use KServe's defaults
        path.write_text(json.dumps(config))
    return path
