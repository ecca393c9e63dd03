"""Issue 18 items 2 and 3 as pure logic: settings a protocol would ignore, and secrets that
would travel in clear, are refused naming both options; a refusal by the brokers is told from
an outage, in one line that names the settings and never their values."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any, cast

import pytest
import trustme
import typer
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    SaslAuthenticationFailed,
    TopicAuthorizationFailedError,
)
from cryptography.hazmat.primitives import serialization
from pydantic import ValidationError

from consumer.hooks import Hooks
from consumer.input_settings import RecordLimits
from consumer.intake.batching import Batcher
from consumer.intake.fetch_loop import Intake
from consumer.intake.group_client import until_connected
from consumer.state.items import Item
from consumer.state.ledger import Ledger
from schemas.kafka import KafkaSettings
from schemas.kafka_refusals import (
    KafkaAuthError,
    KafkaCredentialsError,
    exit_if_refused,
    is_refusal,
    probe_login,
    refusal_message,
)
from schemas.kafka_token import KafkaTokenProvider
from schemas.registry_settings import RegistrySettings
from schemas.token_sources import TokenRefusedError
from schemas.wire import WriterSchemas


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("MOLSTREAM_"):
            monkeypatch.delenv(name)


SCRAM: dict[str, Any] = {
    "sasl_mechanism": "SCRAM-SHA-256",
    "sasl_username": "u",
    "sasl_password": "pw",
}
OIDC: dict[str, Any] = {
    "oidc_token_url": "https://idp.example/token",
    "oidc_client_id": "molstream",
    "oidc_client_secret": "s",
}


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"ssl_cafile": "ca.pem"},
            "--ssl-cafile is not used under --security-protocol PLAINTEXT",
        ),
        (
            {"security_protocol": "SASL_PLAINTEXT", "ssl_certfile": "c.pem", **SCRAM},
            "--ssl-certfile is not used under --security-protocol SASL_PLAINTEXT",
        ),
        (
            {"sasl_username": "u"},
            "--sasl-username is not used under --security-protocol PLAINTEXT",
        ),
        (
            {"security_protocol": "SSL", "sasl_mechanism": "SCRAM-SHA-512"},
            "--sasl-mechanism is not used under --security-protocol SSL",
        ),
        (
            {"security_protocol": "SSL", "ssl_keyfile_password": "pw"},
            "MOLSTREAM_SSL_KEYFILE_PASSWORD without --ssl-keyfile",
        ),
        (  # review finding 8: aiokafka would ignore the key
            {"security_protocol": "SSL", "ssl_keyfile": "k.pem"},
            "--ssl-keyfile without --ssl-certfile",
        ),
        (
            {"security_protocol": "SASL_PLAINTEXT", "sasl_username": "u", "sasl_password": "p"},
            "--sasl-mechanism PLAIN under --security-protocol SASL_PLAINTEXT sends the password "
            "in clear",
        ),
        (
            {"security_protocol": "SASL_SSL", "sasl_mechanism": "OAUTHBEARER"},
            "--sasl-mechanism OAUTHBEARER needs --sasl-oauth-token-provider",
        ),
        (
            {
                "security_protocol": "SASL_SSL",
                "sasl_mechanism": "OAUTHBEARER",
                "sasl_oauth_token_provider": "aws-msk-iam",
                "sasl_username": "u",
            },
            "--sasl-username is not used with --sasl-mechanism OAUTHBEARER",
        ),
        (
            {"security_protocol": "SASL_SSL", "sasl_oauth_token_provider": "aws-msk-iam", **SCRAM},
            "--sasl-oauth-token-provider is not used with --sasl-mechanism SCRAM-SHA-256",
        ),
        (
            {
                "security_protocol": "SASL_SSL",
                "sasl_mechanism": "OAUTHBEARER",
                "sasl_oauth_token_provider": "oidc",
            },
            "--sasl-oauth-token-provider oidc needs --oidc-token-url, --oidc-client-id, "
            "MOLSTREAM_OIDC_CLIENT_SECRET",
        ),
        (OIDC, "without --sasl-oauth-token-provider oidc"),
        ({"sasl_oauth_token_provider": "not a provider"}, "nor module:callable"),
    ],
)
def test_settings_that_would_be_ignored_or_sent_in_clear_are_refused(
    settings: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError, match=message.replace("(", r"\(")) as info:
        KafkaSettings(**settings)
    assert "pw" not in str(info.value).replace("password", "")


def test_insecure_auth_is_allowed_when_asked_for() -> None:
    kwargs = KafkaSettings(
        security_protocol="SASL_PLAINTEXT",
        sasl_username="u",
        sasl_password="p",
        allow_insecure_auth=True,
    ).client_kwargs()
    assert kwargs["sasl_plain_password"] == "p"


def test_oidc_token_url_over_http_is_refused() -> None:
    oauth: dict[str, Any] = {"sasl_mechanism": "OAUTHBEARER", "sasl_oauth_token_provider": "oidc"}
    with pytest.raises(ValidationError, match="sends the client secret in clear"):
        KafkaSettings(
            security_protocol="SASL_SSL",
            **oauth,
            **{**OIDC, "oidc_token_url": "http://idp.example/token"},
        )


def test_oidc_token_url_with_credentials_is_refused_without_echoing_it() -> None:
    """Review finding 8: the token URL is put in messages; its credentials must not be."""
    oauth: dict[str, Any] = {"sasl_mechanism": "OAUTHBEARER", "sasl_oauth_token_provider": "oidc"}
    with pytest.raises(ValidationError, match="credentials in the URL are refused") as info:
        KafkaSettings(
            security_protocol="SASL_SSL",
            **oauth,
            **{**OIDC, "oidc_token_url": "https://id:hunter2@idp.example/token"},
        )
    assert "hunter2" not in str(info.value)


def test_a_logical_cluster_with_a_bearer_token_is_accepted() -> None:
    settings = RegistrySettings(
        schema_registry_url="https://registry.example",
        schema_registry_bearer_token="t",
        schema_registry_logical_cluster="lsrc-1",
    )
    assert settings.schema_registry_logical_cluster == "lsrc-1"


def test_oauthbearer_client_kwargs_carry_a_token_provider() -> None:
    kwargs = KafkaSettings(
        security_protocol="SASL_SSL",
        sasl_mechanism="OAUTHBEARER",
        sasl_oauth_token_provider="oidc",
        **OIDC,
    ).client_kwargs()
    assert isinstance(kwargs["sasl_oauth_token_provider"], KafkaTokenProvider)
    assert "sasl_plain_password" not in kwargs


def test_encrypted_client_key_is_opened_with_its_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca = trustme.CA()
    leaf = ca.issue_cert("molstream-client")
    key = serialization.load_pem_private_key(leaf.private_key_pem.bytes(), password=None)
    keyfile = tmp_path / "key.pem"
    keyfile.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"key-pass"),
        )
    )
    certfile = tmp_path / "cert.pem"
    leaf.cert_chain_pems[0].write_to_path(str(certfile))
    monkeypatch.setenv("MOLSTREAM_SSL_KEYFILE_PASSWORD", "key-pass")
    settings = KafkaSettings(
        security_protocol="SSL", ssl_certfile=str(certfile), ssl_keyfile=str(keyfile)
    )
    assert settings.client_kwargs()["ssl_context"] is not None
    monkeypatch.setenv("MOLSTREAM_SSL_KEYFILE_PASSWORD", "wrong")
    wrong = KafkaSettings(
        security_protocol="SSL", ssl_certfile=str(certfile), ssl_keyfile=str(keyfile)
    )
    # Review finding 7: one line naming the settings (never the password), and a refusal
    # (exit 2), not an ssl.SSLError that would pass for an unreachable broker (an OSError).
    with pytest.raises(KafkaCredentialsError) as info:
        wrong.client_kwargs()
    line = refusal_message(wrong, info.value)
    assert line is not None and "\n" not in line and "wrong" not in line
    assert "--ssl-certfile, --ssl-keyfile and MOLSTREAM_SSL_KEYFILE_PASSWORD" in line
    with pytest.raises(typer.Exit) as exited:  # produce, results, redrive
        exit_if_refused(wrong, info.value)
    assert exited.value.exit_code == 2


# -- the Schema Registry --------------------------------------------------------------------


def test_registry_url_with_credentials_is_refused_without_echoing_it() -> None:
    with pytest.raises(ValidationError, match="credentials in the URL are refused") as info:
        RegistrySettings(schema_registry_url="https://svc:hunter2@registry.example")
    assert "hunter2" not in str(info.value)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"schema_registry_user": "svc", "schema_registry_password": "p"},
            "--schema-registry-user over an http:// --schema-registry-url travels in clear",
        ),
        (
            {"schema_registry_bearer_token": "t"},
            "MOLSTREAM_SCHEMA_REGISTRY_BEARER_TOKEN over an http://",
        ),
        ({"schema_registry_ca_file": "ca.pem"}, "--schema-registry-ca-file is not used with"),
    ],
)
def test_registry_secrets_over_http_are_refused(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        RegistrySettings(schema_registry_url="http://registry.example", **settings)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {
                "schema_registry_user": "svc",
                "schema_registry_password": "p",
                "schema_registry_bearer_token": "t",
            },
            "choose one way to authenticate",
        ),
        ({"schema_registry_key_file": "k.pem"}, "without --schema-registry-cert-file"),
        # review finding 8: the logical cluster goes only with a bearer token
        ({"schema_registry_logical_cluster": "lsrc-1"}, "sent only with a bearer token"),
        (
            {
                "schema_registry_user": "svc",
                "schema_registry_password": "p",
                "schema_registry_logical_cluster": "lsrc-1",
            },
            "sent only with a bearer token",
        ),
        ({"schema_registry_token_provider": "aws-msk-iam"}, "Kafka's only"),
        ({"schema_registry_token_provider": "oidc"}, "needs --oidc-token-url"),
    ],
)
def test_registry_settings_that_do_not_fit_are_refused(
    settings: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        RegistrySettings(schema_registry_url="https://registry.example", **settings)


def test_registry_client_certificate_and_key_reach_the_client_conf() -> None:
    conf = RegistrySettings(
        schema_registry_url="https://registry.example",
        schema_registry_cert_file="c.pem",
        schema_registry_key_file="k.pem",
    ).registry_client_conf()
    assert conf["ssl.certificate.location"] == "c.pem"
    assert conf["ssl.key.location"] == "k.pem"


# -- refusals by the brokers ----------------------------------------------------------------

SASL = KafkaSettings(
    security_protocol="SASL_SSL",
    sasl_mechanism="SCRAM-SHA-512",
    **{k: v for k, v in SCRAM.items() if k != "sasl_mechanism"},
)


def test_authentication_and_authorization_failures_are_refusals_with_one_line() -> None:
    login = refusal_message(SASL, SaslAuthenticationFailed())
    assert login is not None and login.startswith("Kafka authentication failed")
    assert "--sasl-username and MOLSTREAM_SASL_PASSWORD" in login
    topic = refusal_message(SASL, TopicAuthorizationFailedError("molecules"))
    assert topic is not None and "Kafka authorization failed" in topic and "a topic" in topic
    group = refusal_message(SASL, GroupAuthorizationFailedError())
    assert group is not None and "the consumer group" in group
    token = refusal_message(SASL, TokenRefusedError("OIDC token endpoint refused"))
    assert token is not None and "no token" in token
    for line in (login, topic, group, token):
        assert "\n" not in line and "pw" not in line.replace("PASSWORD", "")


def test_outages_and_other_errors_are_not_refusals() -> None:
    assert refusal_message(SASL, KafkaConnectionError("Unable to bootstrap")) is None
    assert refusal_message(SASL, KeyError("v")) is None  # not raised by aiokafka
    assert not is_refusal(OSError("refused"))


async def test_until_connected_ends_at_a_refusal_and_retries_an_outage() -> None:
    plaintext = KafkaSettings()
    attempts: list[str] = []

    async def refused() -> None:
        attempts.append("refused")
        raise SaslAuthenticationFailed()

    with pytest.raises(KafkaAuthError, match="Kafka authentication failed"):
        await until_connected(
            "producer", refused, kafka=SASL, on_error=attempts.append, on_attempt=lambda: None
        )
    assert attempts == ["refused"]  # once: no retry

    outcomes: list[BaseException | None] = [KafkaConnectionError("away"), None]

    async def away_then_back() -> None:
        outcome = outcomes.pop(0)
        if outcome is not None:
            raise outcome

    errors: list[str] = []
    await asyncio.wait_for(
        until_connected(
            "consumer",
            away_then_back,
            kafka=plaintext,
            on_error=errors.append,
            on_attempt=lambda: None,
        ),
        10,
    )
    assert errors == ["connect"] and outcomes == []


class _RefusingConsumer:
    """Away once (an outage), then not allowed to read the topic."""

    def __init__(self) -> None:
        self.calls = 0

    async def getmany(self, *, timeout_ms: int, max_records: int) -> dict[Any, Any]:
        self.calls += 1
        if self.calls == 1:
            raise KafkaConnectionError("away")
        raise TopicAuthorizationFailedError("molecules")

    def assignment(self) -> set[Any]:
        return set()


class _NoDispatch:
    def dispatch(self, batches: Any) -> None:
        assert not batches


async def test_the_fetch_routine_retries_an_outage_and_ends_at_a_refusal() -> None:
    consumer = _RefusingConsumer()
    intake = Intake(
        consumer=lambda: cast(Any, consumer),
        ledger=Ledger(16, 2000),
        dispatcher=cast(Any, _NoDispatch()),
        writers=WriterSchemas(None),
        batcher=Batcher[Item](batch_size=4, batch_wait_s=0.0),
        limits=RecordLimits(1 << 20, 1024, 64, 1 << 16),
        hooks=Hooks(),
        clock=time.monotonic,
    )
    with pytest.raises(TopicAuthorizationFailedError):
        await asyncio.wait_for(intake.fetch_routine(), 10)
    assert consumer.calls == 2
    line = refusal_message(SASL, TopicAuthorizationFailedError("molecules"))
    assert line is not None and "--sasl-username" in line


class _RotatedSecret:
    """A token source whose client secret is rotated after the first token."""

    def __init__(self) -> None:
        self.asked = 0

    def token(self) -> str:
        self.asked += 1
        if self.asked > 1:
            raise TokenRefusedError("OIDC token endpoint refused the client credentials")
        return "t1"


async def test_a_token_refused_on_a_reconnect_fails_the_login_and_is_raised_by_refused() -> None:
    """Review finding 1: the OIDC client secret is rotated after start-up. The reconnect's
    token fails as a SASL failure (a KafkaError: aiokafka handles it as a failed connection
    instead of its fetcher dying unseen), and ``refused`` (a routine of the service) raises
    the refusal, whose line says no token."""
    provider = KafkaTokenProvider(_RotatedSecret())
    watching = asyncio.create_task(provider.refused())
    assert await provider.token() == "t1"
    with pytest.raises(SaslAuthenticationFailed) as login:
        await provider.token()
    with pytest.raises(TokenRefusedError):
        await asyncio.wait_for(watching, 1.0)
    line = refusal_message(SASL, login.value)
    assert line is not None and line.startswith("Kafka authentication failed: no token: OIDC")


def test_every_client_of_the_settings_shares_one_token_provider() -> None:
    """The provider ``molstream consume`` watches is the one its clients log in with."""
    settings = KafkaSettings(
        security_protocol="SASL_SSL",
        sasl_mechanism="OAUTHBEARER",
        sasl_oauth_token_provider="oidc",
        **OIDC,
    )
    provider = settings.kafka_token_provider()
    assert provider is not None
    assert settings.client_kwargs()["sasl_oauth_token_provider"] is provider
    assert settings.client_kwargs()["sasl_oauth_token_provider"] is provider
    assert KafkaSettings().kafka_token_provider() is None


async def test_probe_login_reaches_a_bracketed_ipv6_bootstrap_server(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Review, minor: ``[::1]:9093`` is probed at host ``::1``, port 9093 (split by hand,
    the host was ``[::1]`` and never reached), and its refusal is told."""
    import aiokafka.conn

    asked: list[tuple[str, int]] = []

    async def refusing(host: str, port: int, **kwargs: Any) -> None:
        asked.append((host, port))
        raise SaslAuthenticationFailed()

    monkeypatch.setattr(aiokafka.conn, "create_conn", refusing)
    settings = SASL.model_copy(update={"bootstrap_servers": "[::1]:9093,kafka"})
    line = await probe_login(settings)
    assert asked == [("::1", 9093)]
    assert line is not None and line.startswith("Kafka authentication failed")
