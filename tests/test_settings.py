"""predictor.settings: flag > PREDICTOR_* environment > default, validation, --help."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from predictor.settings import ENV_PREFIX, Settings, build_parser, load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No PREDICTOR_* variable from the outer environment leaks into a test."""
    import os

    for key in list(os.environ):
        if key.startswith(ENV_PREFIX):
            monkeypatch.delenv(key)


def test_defaults_without_flags_or_env() -> None:
    """Every documented default, and no unknown flags."""
    settings, rest = load_settings([])
    assert rest == []
    assert settings.model_dir == Path("/mnt/models")
    assert settings.model_name == "model"
    assert settings.model_sha256 is None
    assert settings.trusted_types == []
    assert (settings.default_output, settings.v1_output) == ("predict", "predict")
    assert settings.engine == "auto"
    assert settings.batching is True
    assert (settings.max_batch_size, settings.max_latency_us) == (64, 2000)
    assert (settings.idle_wait_us, settings.inline_max_us) == (200, 300)
    assert (settings.http_port, settings.grpc_port, settings.enable_grpc) == (8080, 8081, True)
    assert (settings.workers, settings.max_threads, settings.max_asyncio_workers) == (1, 4, None)
    assert settings.grpc_max_message_bytes == 64 * 1024 * 1024
    assert (settings.log_level, settings.log_format) == ("INFO", "json")


@pytest.mark.parametrize(
    ("field", "env", "flag", "expected_env", "expected_flag"),
    [
        ("model_name", "from-env", "from-flag", "from-env", "from-flag"),
        ("model_dir", "/env/models", "/flag/models", Path("/env/models"), Path("/flag/models")),
        ("max_batch_size", "8", "16", 8, 16),
        ("idle_wait_us", "0", "500", 0, 500),
        ("engine", "onnx", "sklearn", "onnx", "sklearn"),
        ("batching", "false", "true", False, True),
        ("log_level", "debug", "warning", "DEBUG", "WARNING"),
    ],
    ids=["str", "path", "int", "idle_wait", "literal", "bool", "log_level"],
)
def test_env_beats_default_and_flag_beats_env(
    monkeypatch: pytest.MonkeyPatch,
    field: str,
    env: str,
    flag: str,
    expected_env: object,
    expected_flag: object,
) -> None:
    """PREDICTOR_<FIELD> overrides the default; --<field> overrides the variable."""
    monkeypatch.setenv(f"PREDICTOR_{field.upper()}", env)
    from_env, _ = load_settings([])
    assert getattr(from_env, field) == expected_env
    from_flag, _ = load_settings([f"--{field}", flag])
    assert getattr(from_flag, field) == expected_flag


def test_flag_wins_over_an_invalid_env_value(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the winning value is validated: a bad variable hidden by a flag is harmless."""
    monkeypatch.setenv("PREDICTOR_ENGINE", "gpu")
    settings, _ = load_settings(["--engine", "sklearn"])
    assert settings.engine == "sklearn"


def test_empty_flag_clears_the_env_value(monkeypatch: pytest.MonkeyPatch) -> None:
    """An explicitly empty flag still wins: it clears a value set in the environment."""
    monkeypatch.setenv("PREDICTOR_TRUSTED_TYPES", "a.B")
    monkeypatch.setenv("PREDICTOR_MODEL_SHA256", "ab" * 32)
    settings, _ = load_settings(["--trusted_types", "", "--model_sha256", ""])
    assert settings.trusted_types == []
    assert settings.model_sha256 == ""


def test_unknown_flags_are_returned_for_kserve() -> None:
    """Flags the predictor does not know are handed back in order, values included."""
    settings, rest = load_settings(
        ["--model_name", "iris", "--enable_docs_url", "true", "--configure_logging=false"]
    )
    assert settings.model_name == "iris"
    assert rest == ["--enable_docs_url", "true", "--configure_logging=false"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("a,b", ["a", "b"]),
        (" a , b ,", ["a", "b"]),
        ("sklearn.x.T", ["sklearn.x.T"]),
        (",,", []),
    ],
    ids=["two", "spaces-trailing-comma", "one", "only-commas"],
)
def test_trusted_types_split_on_commas(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: list[str]
) -> None:
    """PREDICTOR_TRUSTED_TYPES and --trusted_types are comma-separated, blanks dropped."""
    monkeypatch.setenv("PREDICTOR_TRUSTED_TYPES", value)
    assert load_settings([])[0].trusted_types == expected
    monkeypatch.delenv("PREDICTOR_TRUSTED_TYPES")
    assert load_settings(["--trusted_types", value])[0].trusted_types == expected


def test_trusted_types_accepts_a_list_directly() -> None:
    """Constructed in code, a list is kept as it is."""
    assert Settings(trusted_types=["x.Y", "z.W"]).trusted_types == ["x.Y", "z.W"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("true", True),
        ("1", True),
        ("yes", True),
        ("on", True),
        ("false", False),
        ("0", False),
        ("no", False),
        ("off", False),
        ("FALSE", False),
    ],
)
def test_bool_parsing(monkeypatch: pytest.MonkeyPatch, text: str, expected: bool) -> None:
    """Booleans accept the usual spellings, from flags and from the environment."""
    assert load_settings(["--batching", text])[0].batching is expected
    monkeypatch.setenv("PREDICTOR_ENABLE_GRPC", text)
    assert load_settings([])[0].enable_grpc is expected


@pytest.mark.parametrize(
    ("argv", "field", "fragment"),
    [
        (["--engine", "gpu"], "engine", "'auto', 'onnx' or 'sklearn'"),
        (["--max_batch_size", "0"], "max_batch_size", "greater than or equal to 1"),
        (["--max_latency_us", "-1"], "max_latency_us", "greater than or equal to 0"),
        (["--http_port", "70000"], "http_port", "less than or equal to 65535"),
        (["--log_level", "verbose"], "log_level", "got 'verbose'"),
        (["--log_format", "xml"], "log_format", "'json' or 'text'"),
        (["--v1_output", "explain"], "v1_output", "'predict', 'predict_proba'"),
        (["--batching", "maybe"], "batching", "valid boolean"),
        (["--workers", "two"], "workers", "valid integer"),
        (["--grpc_max_message_bytes", "100"], "grpc_max_message_bytes", "1024"),
        (["--idle_wait_us", "-5"], "idle_wait_us", "greater than or equal to 0"),
    ],
    ids=[
        "engine",
        "max_batch_size-0",
        "latency-negative",
        "port-range",
        "log_level",
        "log_format",
        "v1_output",
        "bool",
        "int",
        "grpc-min",
        "idle-wait-negative",
    ],
)
def test_invalid_values_are_rejected_naming_the_field(
    argv: list[str], field: str, fragment: str
) -> None:
    """Each invalid value fails validation with the field's name and the reason."""
    with pytest.raises(ValidationError) as caught:
        load_settings(argv)
    errors = caught.value.errors()
    assert [e["loc"] for e in errors] == [(field,)]
    assert fragment in str(caught.value)


def test_invalid_env_value_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bad PREDICTOR_* value fails the same way as a bad flag."""
    monkeypatch.setenv("PREDICTOR_MAX_BATCH_SIZE", "0")
    with pytest.raises(ValidationError, match="max_batch_size"):
        load_settings([])


@pytest.mark.parametrize("level", ["debug", "Info", "WARNING", "error", "critical"])
def test_log_level_is_upper_cased(level: str) -> None:
    assert load_settings(["--log_level", level])[0].log_level == level.upper()


def test_settings_are_frozen() -> None:
    """Settings are read once and never changed afterwards."""
    settings, _ = load_settings([])
    with pytest.raises(ValidationError, match="frozen"):
        settings.model_name = "other"  # type: ignore[misc]


def test_unrelated_env_vars_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    """A PREDICTOR_* variable that is not a setting does not fail start-up."""
    monkeypatch.setenv("PREDICTOR_NOT_A_SETTING", "x")
    assert load_settings([])[0].model_name == "model"


def test_parser_has_one_flag_per_setting_defaulting_to_none() -> None:
    """Flags default to None so unset flags fall through to the environment."""
    parser = build_parser()
    namespace = parser.parse_args([])
    assert set(vars(namespace)) == set(Settings.model_fields)
    assert all(value is None for value in vars(namespace).values())


def test_help_names_every_env_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """--help lists each flag with its PREDICTOR_* variable and its default."""
    monkeypatch.setenv("COLUMNS", "400")  # one help entry per line, no wrapping
    text = build_parser().format_help()
    assert "PREDICTOR_<FLAG IN CAPITALS>" in text
    for name in Settings.model_fields:
        assert f"--{name}" in text
        assert f"[env PREDICTOR_{name.upper()}; default" in text
    assert "[env PREDICTOR_MAX_BATCH_SIZE; default 64]" in text
    assert "[env PREDICTOR_TRUSTED_TYPES; default []]" in text
    assert "[env PREDICTOR_ENGINE; default 'auto']" in text
