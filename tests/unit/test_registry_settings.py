"""Unit tests for the Schema Registry settings shared by consume, produce and results."""

from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError

from consumer.settings import ConsumerSettings
from producer.settings import ProduceSettings, ResultsSettings
from schemas.registry_settings import RegistrySettings, RegistryWriterSettings

URL = "https://registry.example:8081"


def test_no_url_means_no_registry_and_single_object_output() -> None:
    settings = RegistryWriterSettings()
    assert settings.schema_registry_url is None
    assert not settings.writes_registry_framing


@pytest.mark.parametrize(
    ("output_format", "url", "registry"),
    [
        ("auto", URL, True),
        ("auto", None, False),
        ("registry", URL, True),
        ("single-object", URL, False),
        ("single-object", None, False),
    ],
)
def test_output_format(output_format: str, url: str | None, registry: bool) -> None:
    settings = RegistryWriterSettings(output_format=output_format, schema_registry_url=url)
    assert settings.writes_registry_framing is registry


def test_registry_output_without_a_url_is_refused_naming_both() -> None:
    with pytest.raises(
        ValidationError, match="--output-format registry needs --schema-registry-url"
    ):
        ConsumerSettings(output_format="registry")


@pytest.mark.parametrize(
    "given",
    [
        {"schema_registry_url": URL, "schema_registry_user": "svc"},
        {"schema_registry_url": URL, "schema_registry_password": SecretStr("pw")},
    ],
)
def test_user_and_password_go_together(given: dict[str, object]) -> None:
    with pytest.raises(
        ValidationError, match="--schema-registry-user and MOLSTREAM_SCHEMA_REGISTRY_PASSWORD"
    ):
        RegistrySettings(**given)  # type: ignore[arg-type]


@pytest.mark.parametrize("url", ["registry:8081", "ftp://registry", "http://a:8081,b:8081", ""])
def test_urls_must_be_http(url: str) -> None:
    with pytest.raises(ValidationError, match="is not an http:// or https:// URL"):
        RegistrySettings(schema_registry_url=url)


def test_several_urls_are_accepted() -> None:
    urls = "http://a:8081, https://b:8081"
    assert RegistrySettings(schema_registry_url=urls).registry_client_conf()["url"] == urls


def test_registry_options_without_a_url_are_refused() -> None:
    with pytest.raises(
        ValidationError, match="--schema-registry-ca-file without --schema-registry-url"
    ):
        RegistrySettings(schema_registry_ca_file="/ca.pem")


def test_the_password_comes_from_the_environment_and_is_never_shown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MOLSTREAM_SCHEMA_REGISTRY_PASSWORD", "pw-1234")
    monkeypatch.setenv("MOLSTREAM_SCHEMA_REGISTRY_USER", "svc")
    monkeypatch.setenv("MOLSTREAM_SCHEMA_REGISTRY_URL", URL)
    settings = ResultsSettings()
    assert "pw-1234" not in repr(settings)
    conf = settings.registry_client_conf()
    assert conf["basic.auth.user.info"] == "svc:pw-1234"
    assert conf["url"] == URL
    with pytest.raises(ValidationError) as info:
        ConsumerSettings(min_workers=9)
    assert "pw-1234" not in str(info.value)


def test_client_conf_carries_the_ca_file_and_timeout() -> None:
    conf = ProduceSettings(
        schema_registry_url=URL, schema_registry_ca_file="/etc/ca.pem", schema_registry_timeout_s=3
    ).registry_client_conf()
    assert conf["ssl.ca.location"] == "/etc/ca.pem"
    assert conf["timeout"] == 3
    assert "basic.auth.user.info" not in conf


def test_every_command_shares_the_same_registry_fields() -> None:
    shared = set(RegistrySettings.model_fields)
    for cls in (ConsumerSettings, ProduceSettings, ResultsSettings):
        assert shared <= set(cls.model_fields), cls
    assert "output_format" in ConsumerSettings.model_fields
    assert "output_format" in ProduceSettings.model_fields
    assert "output_format" not in ResultsSettings.model_fields  # it only reads
