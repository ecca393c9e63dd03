"""Unit tests for consumer.settings, schemas.cli_options and the ``molstream`` CLI.

No broker and no Ray: the module consume runs (consumer.runner) is replaced by a stand-in
before it is invoked, and the only network use is a connection to 127.0.0.1:1 (refused) in
one produce test.
"""

from __future__ import annotations

import os
import re
import socket
import ssl
import sys
import types
from collections.abc import AsyncIterable, Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from pydantic import SecretStr, ValidationError
from typer.testing import CliRunner, Result

from consumer.cli import app
from consumer.settings import ConsumerSettings
from schemas import Molecule
from schemas.cli_options import settings_parameters
from schemas.kafka import KafkaSettings
from schemas.registry_settings import RegistryWriterSettings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No MOLSTREAM_* variable of the outer environment leaks into a test."""
    for name in list(os.environ):
        if name.startswith("MOLSTREAM_"):
            monkeypatch.delenv(name)


@pytest.fixture
def runner() -> CliRunner:
    # A fixed width: help text must not depend on the terminal the tests run in.
    return CliRunner(env={"COLUMNS": "100"})


def _flat(text: str) -> str:
    """Help text with its line wrapping undone."""
    return " ".join(text.split())


def _settings(**values: Any) -> ConsumerSettings:
    return ConsumerSettings(**values)


def _no_traceback(result: Result) -> None:
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )


# -- ConsumerSettings ------------------------------------------------------------------------


def test_defaults() -> None:
    s = ConsumerSettings()
    assert s.bootstrap_servers == "127.0.0.1:9092"
    assert (s.input_topic, s.output_topic, s.dlq_topic) == (
        "molecules",
        "predictions",
        "molecules.dlq",
    )
    assert s.model == "reference"
    assert s.model_option == {}
    assert s.worker_resources == {}
    assert s.security_protocol == "PLAINTEXT"
    assert s.sasl_password is None
    assert s.batch_wait_s == pytest.approx(0.05)


def test_reads_molstream_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOLSTREAM_BOOTSTRAP_SERVERS", "kafka-1:9093,kafka-2:9093")
    monkeypatch.setenv("MOLSTREAM_INPUT_TOPIC", "in")
    monkeypatch.setenv("MOLSTREAM_MIN_WORKERS", "2")
    monkeypatch.setenv("MOLSTREAM_MAX_WORKERS", "16")
    monkeypatch.setenv("MOLSTREAM_BATCH_WAIT_MS", "250")
    monkeypatch.setenv("MOLSTREAM_LOG_LEVEL", "debug")
    monkeypatch.setenv("MOLSTREAM_METRICS_PORT", "9100")
    monkeypatch.setenv("MOLSTREAM_RAY_ADDRESS", "10.0.0.1:6379")
    monkeypatch.setenv("MOLSTREAM_TOPIC", "not-a-consumer-field")  # produce's; ignored here
    s = ConsumerSettings()
    assert s.bootstrap_servers == "kafka-1:9093,kafka-2:9093"
    assert s.input_topic == "in"
    assert (s.min_workers, s.max_workers) == (2, 16)
    assert s.batch_wait_s == pytest.approx(0.25)
    assert s.log_level == "debug"
    assert s.metrics_port == 9100
    assert s.ray_address == "10.0.0.1:6379"


def test_init_values_override_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOLSTREAM_GROUP_ID", "from-env")
    assert ConsumerSettings(group_id="given").group_id == "given"


def test_worker_resources_from_json_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOLSTREAM_WORKER_RESOURCES", '{"spot": 1, "accelerator_type:A10G": 0.5}')
    s = ConsumerSettings()
    assert s.worker_resources == {"spot": 1.0, "accelerator_type:A10G": 0.5}


def test_model_option_from_key_value_list() -> None:
    s = ConsumerSettings(model_option=["load_s=0", "path=/models/a=b.pt", "empty="])
    assert s.model_option == {"load_s": "0", "path": "/models/a=b.pt", "empty": ""}


@pytest.mark.parametrize("bad", ["novalue", "=x"])
def test_model_option_must_be_key_value(bad: str) -> None:
    with pytest.raises(ValidationError, match="is not KEY=VALUE"):
        ConsumerSettings(model_option=[bad])


def test_model_option_from_json_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOLSTREAM_MODEL_OPTION", '{"load_s": "2", "per_molecule_ms": "5"}')
    assert ConsumerSettings().model_option == {"load_s": "2", "per_molecule_ms": "5"}


def test_min_workers_above_max_workers_is_rejected() -> None:
    with pytest.raises(ValidationError, match="--min-workers 5 exceeds --max-workers 2"):
        ConsumerSettings(min_workers=5, max_workers=2)
    assert ConsumerSettings(min_workers=3, max_workers=3).max_workers == 3
    assert ConsumerSettings(min_workers=0, max_workers=1).min_workers == 0


@pytest.mark.parametrize(
    "topics",
    [
        {"input_topic": "t", "output_topic": "t"},
        {"input_topic": "t", "dlq_topic": "t"},
        {"output_topic": "molecules.dlq"},
        {"input_topic": "predictions"},
    ],
)
def test_identical_topics_are_rejected(topics: dict[str, str]) -> None:
    with pytest.raises(ValidationError, match="must all differ"):
        _settings(**topics)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("batch_size", 0),
        ("max_workers", 0),
        ("min_workers", -1),
        ("batch_timeout_s", 0),
        ("worker_num_cpus", -1),
        ("metrics_port", 70000),
        ("log_level", "trace"),
        ("no_such_setting", 1),
    ],
)
def test_out_of_range_values_are_rejected(field: str, value: object) -> None:
    with pytest.raises(ValidationError):
        _settings(**{field: value})


@pytest.mark.parametrize("protocol", ["SASL_PLAINTEXT", "SASL_SSL"])
@pytest.mark.parametrize(
    "credentials",
    [{}, {"sasl_username": "alice"}, {"sasl_password": "pw"}],
    ids=["neither", "no-password", "no-username"],
)
def test_sasl_needs_username_and_password(protocol: str, credentials: dict[str, str]) -> None:
    with pytest.raises(ValidationError, match="needs --sasl-username and MOLSTREAM_SASL_PASSWORD"):
        _settings(security_protocol=protocol, **credentials)


def test_sasl_password_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOLSTREAM_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("MOLSTREAM_SASL_MECHANISM", "SCRAM-SHA-256")
    monkeypatch.setenv("MOLSTREAM_SASL_USERNAME", "alice")
    monkeypatch.setenv("MOLSTREAM_SASL_PASSWORD", "from-env-secret")
    s = ConsumerSettings()
    assert isinstance(s.sasl_password, SecretStr)
    assert s.client_kwargs()["sasl_plain_password"] == "from-env-secret"


def test_client_kwargs_plaintext() -> None:
    # broker_timeout_s bounds our own calls; aiokafka's request timeout stays above the
    # group join time, which a short broker timeout would otherwise cut off.
    kwargs = ConsumerSettings(broker_timeout_s=2.5).client_kwargs()
    assert kwargs == {"bootstrap_servers": "127.0.0.1:9092", "security_protocol": "PLAINTEXT"}


def test_client_kwargs_ssl_has_an_ssl_context(tmp_path: Path) -> None:
    ca = trustme.CA()
    cafile = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(cafile))
    client = ca.issue_cert("molstream-client")
    certfile = tmp_path / "client.pem"
    client.private_key_and_cert_chain_pem.write_to_path(str(certfile))
    kwargs = KafkaSettings(
        security_protocol="SSL", ssl_cafile=str(cafile), ssl_certfile=str(certfile)
    ).client_kwargs()
    context = kwargs["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert len(context.get_ca_certs()) == 1
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert "sasl_mechanism" not in kwargs
    assert kwargs["security_protocol"] == "SSL"


def test_client_kwargs_sasl_ssl_keeps_the_password_in_one_place() -> None:
    secret = "hunter2-Very-Secret"
    s = ConsumerSettings(
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="alice",
        sasl_password=secret,
    )
    kwargs = s.client_kwargs()
    assert isinstance(kwargs["ssl_context"], ssl.SSLContext)
    assert kwargs["sasl_mechanism"] == "SCRAM-SHA-512"
    assert kwargs["sasl_plain_username"] == "alice"
    assert kwargs["sasl_plain_password"] == secret
    for key, value in kwargs.items():
        if key != "sasl_plain_password":
            assert secret not in repr(value), key
            assert secret not in str(value), key
    # Nor in the settings' own renderings.
    assert secret not in repr(s)
    assert secret not in str(s)
    assert secret not in s.model_dump_json()
    assert secret not in repr(s.model_dump())


def test_sasl_plaintext_has_no_ssl_context() -> None:
    kwargs = ConsumerSettings(
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="SCRAM-SHA-256",
        sasl_username="bob",
        sasl_password="pw",
    ).client_kwargs()
    assert "ssl_context" not in kwargs
    assert kwargs["sasl_plain_password"] == "pw"


def test_validation_errors_do_not_show_the_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOLSTREAM_SASL_PASSWORD", "pw42")
    with pytest.raises(ValidationError) as info:
        ConsumerSettings(min_workers=9)
    assert "pw42" not in str(info.value)


ENV_ONLY = {
    "sasl_password",
    "ssl_keyfile_password",
    "oidc_client_secret",
    "schema_registry_password",
    "schema_registry_bearer_token",
}


def test_every_field_but_the_passwords_is_a_cli_parameter() -> None:
    names = [p.name for p in settings_parameters(ConsumerSettings)]
    assert names == [n for n in ConsumerSettings.model_fields if n not in ENV_ONLY]


# -- the CLI ---------------------------------------------------------------------------------


def test_top_level_help_lists_the_commands(runner: CliRunner) -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0, result.output
    for command in ("consume", "produce", "results", "broker", "demo", "simulate"):
        assert re.search(rf"^\s+{command}\s", result.output, re.MULTILINE), command


def test_consume_help_lists_every_setting_with_its_variable(runner: CliRunner) -> None:
    result = runner.invoke(app, ["consume", "--help"])
    assert result.exit_code == 0, result.output
    text = _flat(result.output)
    fields = [n for n in ConsumerSettings.model_fields if n not in ENV_ONLY]
    assert len(fields) >= 35
    for name in fields:
        option = "--" + name.replace("_", "-")
        variable = "MOLSTREAM_" + name.upper()
        # The option, then (before the next option) its help ending in its variable.
        pattern = rf"{re.escape(option)} (?:(?! --).)*?env: {variable}\]"
        assert re.search(pattern, text), f"{option} / {variable}"
    assert "--sasl-password" not in text
    assert "--schema-registry-password" not in text


@pytest.fixture
def consume_runtime(monkeypatch: pytest.MonkeyPatch) -> list[ConsumerSettings]:
    """Replace what ``consume`` runs after validating, and forbid network connections."""
    started: list[ConsumerSettings] = []

    async def fake_run(
        settings: ConsumerSettings, hooks: object = None, *, metrics_registry: object = None
    ) -> None:
        started.append(settings)

    def no_connect(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"network use: {args!r}")

    # A stand-in for consumer.runner (which would import Ray): consume imports it lazily.
    runner = types.ModuleType("consumer.runner")
    runner.run_until_signal = fake_run  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "consumer.runner", runner)
    monkeypatch.setattr("consumer.cli.configure_logging", lambda *a, **k: None)
    monkeypatch.setattr(socket.socket, "connect", no_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", no_connect)
    return started


def test_consume_min_above_max_exits_2_before_the_network(
    runner: CliRunner, consume_runtime: list[ConsumerSettings]
) -> None:
    result = runner.invoke(app, ["consume", "--min-workers", "5", "--max-workers", "2"])
    assert result.exit_code == 2, result.output
    assert "--min-workers 5 exceeds --max-workers 2" in result.output
    _no_traceback(result)
    assert consume_runtime == []


def test_consume_bad_worker_resources_json_exits_2(
    runner: CliRunner, consume_runtime: list[ConsumerSettings]
) -> None:
    result = runner.invoke(app, ["consume", "--worker-resources", "notjson"])
    assert result.exit_code == 2, result.output
    assert "--worker-resources" in result.output
    assert "not JSON" in result.output
    _no_traceback(result)
    assert consume_runtime == []


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--model-option", "novalue"], "is not KEY=VALUE"),
        (["--input-topic", "x", "--output-topic", "x"], "must all differ"),
        (["--batch-size", "0"], "--batch-size"),
        (["--security-protocol", "SASL_SSL"], "MOLSTREAM_SASL_PASSWORD"),
        (["--sasl-password", "secret"], "No such option"),
        (["--log-level", "trace"], "--log-level"),
        (["--worker-resources", '{"spot": "many"}'], "--worker-resources"),
    ],
)
def test_consume_invalid_settings_exit_2(
    runner: CliRunner,
    consume_runtime: list[ConsumerSettings],
    args: list[str],
    fragment: str,
) -> None:
    result = runner.invoke(app, ["consume", *args])
    assert result.exit_code == 2, result.output
    assert fragment in result.output
    _no_traceback(result)
    assert consume_runtime == []


def test_consume_env_is_validated_too(
    runner: CliRunner, consume_runtime: list[ConsumerSettings], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOLSTREAM_MIN_WORKERS", "5")
    result = runner.invoke(app, ["consume", "--max-workers", "2"])
    assert result.exit_code == 2, result.output
    assert "--min-workers 5 exceeds --max-workers 2" in result.output
    _no_traceback(result)


def test_consume_passes_options_and_env_to_the_runtime(
    runner: CliRunner, consume_runtime: list[ConsumerSettings], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOLSTREAM_GROUP_ID", "from-env")
    monkeypatch.setenv("MOLSTREAM_BATCH_SIZE", "7")
    result = runner.invoke(
        app,
        [
            "consume",
            "--model",
            "synthetic",
            "--model-option",
            "load_s=0",
            "--model-option",
            "per_molecule_ms=1.5",
            "--worker-resources",
            '{"spot": 1}',
            "--batch-size",
            "32",
            "--min-workers",
            "0",
            "--log-format",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    (settings,) = consume_runtime
    assert settings.model == "synthetic"
    assert settings.model_option == {"load_s": "0", "per_molecule_ms": "1.5"}
    assert settings.worker_resources == {"spot": 1.0}
    assert settings.batch_size == 32  # the option wins over MOLSTREAM_BATCH_SIZE
    assert settings.group_id == "from-env"
    assert settings.min_workers == 0
    assert settings.log_format == "json"


@pytest.mark.parametrize("variable", ["MOLSTREAM_WORKER_RESOURCES", "MOLSTREAM_MODEL_OPTION"])
def test_consume_bad_json_in_the_environment_exits_2(
    runner: CliRunner,
    consume_runtime: list[ConsumerSettings],
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
) -> None:
    monkeypatch.setenv(variable, "notjson")
    result = runner.invoke(app, ["consume"])
    assert result.exit_code == 2, result.output
    _no_traceback(result)


# -- produce ---------------------------------------------------------------------------------


class FakePublisher:
    """Stands in for producer.publisher.Publisher: consumes the molecules, sends nothing."""

    sent: list[Molecule]

    def __init__(
        self,
        kafka: KafkaSettings,
        *,
        topic: str,
        rate_per_s: float | None,
        registry: RegistryWriterSettings | None,
    ) -> None:
        self.topic = topic
        FakePublisher.sent = []

    async def __aenter__(self) -> FakePublisher:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        return None

    async def publish_all(
        self,
        molecules: Iterable[Molecule] | AsyncIterable[Molecule],
        *,
        on_sent: Callable[[int], None] = lambda n: None,
    ) -> int:
        assert isinstance(molecules, Iterable)
        for mol in molecules:
            FakePublisher.sent.append(mol)
            on_sent(len(FakePublisher.sent))
        return len(FakePublisher.sent)


@pytest.fixture
def fake_publisher(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[FakePublisher]]:
    monkeypatch.setattr("producer.cli.Publisher", FakePublisher)
    yield FakePublisher


def test_produce_publishes_a_file(
    runner: CliRunner, fake_publisher: type[FakePublisher], tmp_path: Path
) -> None:
    path = tmp_path / "two.smi"
    path.write_text("CCO ethanol\nc1ccccc1 benzene\n")
    result = runner.invoke(app, ["produce", str(path), "--topic", "in"])
    assert result.exit_code == 0, result.output
    assert [m.id for m in fake_publisher.sent] == ["ethanol", "benzene"]
    assert "published 2 molecules to 'in', 0 skipped" in _flat(result.output)


def test_produce_missing_file_exits_2_with_a_message(
    runner: CliRunner,
    fake_publisher: type[FakePublisher],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["produce", "missing.smi"])
    assert result.exit_code == 2, result.output
    assert "missing.smi: no such file" in _flat(result.output)
    _no_traceback(result)


@pytest.mark.timeout(15)
def test_produce_missing_file_with_unreachable_broker(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(
        app,
        ["produce", "missing.smi", "--bootstrap-servers", "127.0.0.1:1", "--broker-timeout-s", "1"],
    )
    assert result.exit_code != 0
    _no_traceback(result)
    text = _flat(result.output)
    assert "missing.smi" in text or "127.0.0.1:1" in text


def test_produce_settings_are_validated(runner: CliRunner, fake_publisher: type[Any]) -> None:
    result = runner.invoke(app, ["produce", "x.smi", "--security-protocol", "SASL_SSL"])
    assert result.exit_code == 2, result.output
    assert "MOLSTREAM_SASL_PASSWORD" in result.output
    _no_traceback(result)


def test_produce_help_has_the_kafka_options(runner: CliRunner) -> None:
    result = runner.invoke(app, ["produce", "--help"])
    assert result.exit_code == 0, result.output
    text = _flat(result.output)
    for name in KafkaSettings.model_fields:
        if name not in ENV_ONLY:
            assert "--" + name.replace("_", "-") in text
            assert "MOLSTREAM_" + name.upper() in text
    assert "--sasl-password" not in text


def test_max_in_flight_below_batch_size_is_rejected() -> None:
    # A partial batch could never fill while fetching waits for room: a certain deadlock.
    with pytest.raises(ValidationError, match="max-in-flight"):
        ConsumerSettings(max_in_flight=10, batch_size=64)


def test_only_transient_send_errors_are_retried() -> None:
    from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError, MessageSizeTooLargeError

    from consumer.sink.acks import transient as _transient

    assert _transient(KafkaConnectionError()) and _transient(KafkaTimeoutError())
    assert _transient(TimeoutError())
    assert not _transient(MessageSizeTooLargeError())
