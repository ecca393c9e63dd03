"""How to reach the brokers and how to send: settings and aiokafka client arguments shared by
every client (:class:`KafkaSettings`) and by every producer (:class:`ProducerSettings`).

It lives beside the codec because producers and consumers both need it and neither may import
the other.
"""

from __future__ import annotations

import ssl
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Self

from pydantic import Field, PrivateAttr, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from schemas.auth_settings import AuthSettings, check_token_provider
from schemas.kafka_checks import check_kafka_security

if TYPE_CHECKING:
    from aiokafka import AIOKafkaProducer

    from schemas.kafka_token import KafkaTokenProvider

CONFIG_FILE: ContextVar[Path | None] = ContextVar("molstream_config_file", default=None)
"""The ``--config`` TOML file the settings being built read (set by the CLI machinery)."""


class KafkaSettings(AuthSettings):
    """Connection settings; each is a ``--option`` and a ``MOLSTREAM_OPTION`` variable.

    Sources, first wins: keyword arguments (the flags), the environment, secret files
    (``_secrets_dir``: one file per setting, named like its variable), the TOML file in
    :data:`CONFIG_FILE`, the defaults. Subclasses inherit the same sources.
    """

    model_config = SettingsConfigDict(
        env_prefix="MOLSTREAM_", extra="forbid", hide_input_in_errors=True
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = TomlConfigSettingsSource(settings_cls, toml_file=CONFIG_FILE.get())
        return init_settings, env_settings, file_secret_settings, toml

    bootstrap_servers: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers.")
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="Kafka security protocol."
    )
    ssl_cafile: str | None = Field(None, description="CA bundle to verify the brokers (SSL).")
    ssl_certfile: str | None = Field(None, description="Client certificate (mutual TLS).")
    ssl_keyfile: str | None = Field(None, description="Client private key (mutual TLS).")
    ssl_keyfile_password: SecretStr | None = Field(
        None,
        description="Password of an encrypted --ssl-keyfile; from "
        "MOLSTREAM_SSL_KEYFILE_PASSWORD or a secret file, never a flag.",
        json_schema_extra={"cli": False},
    )
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"] = Field(
        "PLAIN", description="SASL mechanism (SASL_* protocols)."
    )
    sasl_username: str | None = Field(None, description="SASL user name (PLAIN, SCRAM).")
    sasl_password: SecretStr | None = Field(
        None,
        description="SASL password; from MOLSTREAM_SASL_PASSWORD or a secret file, never a flag.",
        json_schema_extra={"cli": False},
    )
    sasl_oauth_token_provider: str | None = Field(
        None,
        description="Token provider of OAUTHBEARER: aws-msk-iam (the aws extra; AWS's own "
        "credentials and region), oidc (--oidc-*), or module:callable (returns the token).",
    )
    broker_timeout_s: float = Field(
        30.0, gt=0, description="Upper bound of a single broker call (connect, commit, send)."
    )

    _check_provider = field_validator("sasl_oauth_token_provider")(check_token_provider)
    _token_provider: KafkaTokenProvider | None = PrivateAttr(None)

    @model_validator(mode="after")
    def _check_security(self) -> Self:
        check_kafka_security(self)
        return self

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for any aiokafka client (consumer, producer, admin)."""
        kwargs: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers,
            "security_protocol": self.security_protocol,
        }
        if "SSL" in self.security_protocol:
            kwargs["ssl_context"] = self._ssl_context()
        if self.security_protocol.startswith("SASL"):
            kwargs["sasl_mechanism"] = self.sasl_mechanism
            if self.sasl_oauth_token_provider is not None:
                kwargs["sasl_oauth_token_provider"] = self.kafka_token_provider()
            else:
                assert self.sasl_password is not None  # checked by the validator
                kwargs["sasl_plain_username"] = self.sasl_username
                kwargs["sasl_plain_password"] = self.sasl_password.get_secret_value()
        return kwargs

    def _ssl_context(self) -> ssl.SSLContext:
        from aiokafka.helpers import create_ssl_context

        from schemas.kafka_refusals import KafkaCredentialsError

        password = self.ssl_keyfile_password
        try:
            context: ssl.SSLContext = create_ssl_context(
                cafile=self.ssl_cafile,
                certfile=self.ssl_certfile,
                keyfile=self.ssl_keyfile,
                password=None if password is None else password.get_secret_value(),
            )
        except ssl.SSLError as exc:  # an OSError: it would pass for an unreachable broker
            raise KafkaCredentialsError(
                f"Kafka TLS client certificate unusable ({exc.reason or exc}): check "
                "--ssl-certfile, --ssl-keyfile and MOLSTREAM_SSL_KEYFILE_PASSWORD"
            ) from None
        return context

    def kafka_token_provider(self) -> KafkaTokenProvider | None:
        """The OAUTHBEARER token provider every client of these settings shares (one token
        cache, one refusal to watch: :meth:`KafkaTokenProvider.refused`); None without one."""
        if self.sasl_oauth_token_provider is None or self.sasl_mechanism != "OAUTHBEARER":
            return None
        if self._token_provider is None:
            from schemas.kafka_token import KafkaTokenProvider

            source = self.token_source(
                self.sasl_oauth_token_provider, "--sasl-oauth-token-provider"
            )
            self._token_provider = KafkaTokenProvider(source)
        return self._token_provider


class ProducerSettings(KafkaSettings):
    """The connection plus how records are sent: what every client that produces is told."""

    compression_type: Literal["none", "gzip", "snappy", "lz4", "zstd"] = Field(
        "zstd", description="Compression of the batches sent (zstd needs Kafka 2.1 or later)."
    )
    linger_ms: int = Field(
        5, ge=0, description="How long the producer waits to fill a batch before sending it."
    )
    max_batch_size_bytes: int = Field(
        1 << 20,
        ge=1024,
        description="Largest batch sent to one partition; stay below the topic's "
        "max.message.bytes.",
    )
    enable_idempotence: bool = Field(
        False,
        description="Idempotent producer: retries never duplicate or reorder a record. "
        "Recommended on Apache Kafka; the embedded dev broker refuses it.",
    )

    def producer_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for an aiokafka producer: the connection, acks=all, batching."""
        return {
            **self.client_kwargs(),
            "acks": "all",
            "compression_type": None if self.compression_type == "none" else self.compression_type,
            "linger_ms": self.linger_ms,
            "max_batch_size": self.max_batch_size_bytes,
            "enable_idempotence": self.enable_idempotence,
        }

    async def started_producer(self) -> AIOKafkaProducer:
        """A connected producer (connecting bounded by ``broker_timeout_s``); nothing is left
        open when connecting fails."""
        import asyncio

        from aiokafka import AIOKafkaProducer

        producer = AIOKafkaProducer(**self.producer_kwargs())
        try:
            async with asyncio.timeout(self.broker_timeout_s):
                await producer.start()
        except BaseException:
            await producer.stop()
            raise
        return producer
