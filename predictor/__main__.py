"""``python -m predictor`` / ``predictor``: settings -> model -> KServe ModelServer."""

from __future__ import annotations

import logging
import sys

from pydantic import ValidationError

from predictor import logs
from predictor.settings import load_settings

log = logging.getLogger("predictor")


def main(argv: list[str] | None = None) -> int:
    """Parse flags and environment, configure logging, serve until stopped."""
    try:
        settings, unknown = load_settings(sys.argv[1:] if argv is None else argv)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']} (got {e.get('input')!r})"
            for e in err.errors()
        )
        print(f"predictor: invalid settings: {problems}", file=sys.stderr)
        return 2
    log_file = logs.configure(settings.log_level, settings.log_format)
    if unknown:
        log.info("flags passed through to KServe: %s", " ".join(unknown))

    # KServe parses sys.argv when its server module is imported; import it only now.
    from predictor.errors import ModelLoadError
    from predictor.model import SklearnModel
    from predictor.server import PredictorServer, fail_load

    model = SklearnModel(settings)
    server = PredictorServer(settings, log_file)
    try:
        server.start([model])
    except ModelLoadError as err:  # several workers: the model loads before serving
        fail_load(err, settings.model_name)
    except Exception as err:
        fail_load(err, settings.model_name, what="server failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
