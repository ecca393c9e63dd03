"""How to reach a Schema Registry, and which framing to write: settings shared by
``consume``, ``produce`` and ``results`` (each field a ``--option`` and a ``MOLSTREAM_*``
variable). It lives here because the consumer and the producer both build on it."""

from __future__ import annotations

from typing import Any, Literal, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from schemas.auth_settings import AuthSettings, check_token_provider, has_credentials, option_name
from schemas.token_sources import StaticTokenSource, TokenSource, registry_bearer_fields

_TLS_FIELDS = ("schema_registry_ca_file", "schema_registry_cert_file", "schema_registry_key_file")
_CREDENTIAL_FIELDS = (
    "schema_registry_user",
    "schema_registry_bearer_token",
    "schema_registry_token_provider",
)


class RegistrySettings(AuthSettings):
    """Where the Schema Registry is and how to authenticate; unset URL: no registry."""

    model_config = SettingsConfigDict(
        env_prefix="MOLSTREAM_", extra="forbid", hide_input_in_errors=True
    )

    schema_registry_url: str | None = Field(
        None,
        description="Schema Registry URL(s), comma-separated (Confluent API: Confluent, "
        "Karapace, Apicurio ccompat); unset: single-object encoding only.",
    )
    schema_registry_user: str | None = Field(None, description="Schema Registry basic-auth user.")
    schema_registry_password: SecretStr | None = Field(
        None,
        description="Schema Registry basic-auth password; from "
        "MOLSTREAM_SCHEMA_REGISTRY_PASSWORD only, never a flag.",
        json_schema_extra={"cli": False},
    )
    schema_registry_ca_file: str | None = Field(
        None, description="CA bundle to verify the Schema Registry (https)."
    )
    schema_registry_cert_file: str | None = Field(
        None, description="Client certificate for the Schema Registry (mutual TLS)."
    )
    schema_registry_key_file: str | None = Field(
        None, description="Client private key for the Schema Registry (mutual TLS)."
    )
    schema_registry_bearer_token: SecretStr | None = Field(
        None,
        description="Static bearer token for the Schema Registry; from "
        "MOLSTREAM_SCHEMA_REGISTRY_BEARER_TOKEN or a secret file, never a flag.",
        json_schema_extra={"cli": False},
    )
    schema_registry_token_provider: str | None = Field(
        None,
        description="Bearer tokens for the Schema Registry from oidc (--oidc-*) or a "
        "module:callable (returns the token).",
    )
    schema_registry_logical_cluster: str | None = Field(
        None,
        description="Logical cluster sent with a bearer token (Confluent Cloud: lsrc-...).",
    )
    schema_registry_timeout_s: float = Field(
        10.0, gt=0, description="Upper bound of a single Schema Registry request."
    )

    @field_validator("schema_registry_url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        for url in (u.strip() for u in value.split(",")):
            if has_credentials(url):  # never echoed
                raise ValueError(
                    "credentials in the URL are refused (they would be logged): give "
                    "--schema-registry-user and MOLSTREAM_SCHEMA_REGISTRY_PASSWORD instead"
                )
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"{url!r} is not an http:// or https:// URL")
        return value

    _check_provider = field_validator("schema_registry_token_provider")(check_token_provider)

    @model_validator(mode="after")
    def _check_registry(self) -> Self:
        problem = self._registry_problem()
        if problem is not None:
            raise ValueError(problem)
        return self

    def _given(self, fields: tuple[str, ...]) -> list[str]:
        return [option_name(f) for f in fields if getattr(self, f) is not None]

    def _registry_problem(self) -> str | None:
        if (self.schema_registry_user is None) != (self.schema_registry_password is None):
            return "--schema-registry-user and MOLSTREAM_SCHEMA_REGISTRY_PASSWORD go together"
        url = self.schema_registry_url
        credentials = self._given(_CREDENTIAL_FIELDS)
        tls = self._given(_TLS_FIELDS)
        if url is None:
            extra = self._given(("schema_registry_logical_cluster",))
            given = credentials + tls + extra
            return f"{', '.join(given)} without --schema-registry-url" if given else None
        if len(credentials) > 1:
            return f"{credentials[0]} and {credentials[1]}: choose one way to authenticate"
        if self.schema_registry_token_provider == "aws-msk-iam":
            return "--schema-registry-token-provider aws-msk-iam: MSK IAM tokens are Kafka's only"
        if self.schema_registry_key_file is not None and self.schema_registry_cert_file is None:
            return "--schema-registry-key-file without --schema-registry-cert-file"
        bearer = self.schema_registry_token_provider or self.schema_registry_bearer_token
        if self.schema_registry_logical_cluster is not None and bearer is None:
            return (
                "--schema-registry-logical-cluster is sent only with a bearer token: give "
                "--schema-registry-token-provider or MOLSTREAM_SCHEMA_REGISTRY_BEARER_TOKEN, "
                "or drop it"
            )
        in_clear = [u.strip() for u in url.split(",") if u.strip().startswith("http://")]
        if in_clear and len(in_clear) == len(url.split(",")) and tls:
            return f"{tls[0]} is not used with an http:// --schema-registry-url"
        if in_clear and credentials and not self.allow_insecure_auth:
            return (
                f"{credentials[0]} over an http:// --schema-registry-url travels in clear: "
                "use https://, or give --allow-insecure-auth"
            )
        return None

    def credential_options(self) -> str:
        """The settings of the credentials in use, for a message about a refusal."""
        given = self._given(_CREDENTIAL_FIELDS + _TLS_FIELDS[1:])
        if self.schema_registry_user is not None:
            given.insert(1, "MOLSTREAM_SCHEMA_REGISTRY_PASSWORD")
        return ", ".join(["--schema-registry-url", *given])

    def registry_client_conf(self) -> dict[str, Any]:
        """Configuration of confluent-kafka's ``SchemaRegistryClient`` (URL must be set)."""
        assert self.schema_registry_url is not None
        conf: dict[str, Any] = {
            "url": self.schema_registry_url,
            "timeout": self.schema_registry_timeout_s,
            # molstream retries with its own backoff (logged, counted): the client's own
            # retries would only hide an outage for a while.
            "max.retries": 1,
            "retries.wait.ms": 200,
            "retries.max.wait.ms": 1000,
        }
        for field, key in zip(
            _TLS_FIELDS,
            ("ssl.ca.location", "ssl.certificate.location", "ssl.key.location"),
            strict=True,
        ):
            if getattr(self, field) is not None:
                conf[key] = getattr(self, field)
        if self.schema_registry_password is not None:
            password = self.schema_registry_password.get_secret_value()
            conf["basic.auth.user.info"] = f"{self.schema_registry_user}:{password}"
        source = self._bearer_source()
        if source is not None:
            conf["bearer.auth.credentials.source"] = "CUSTOM"
            conf["bearer.auth.custom.provider.function"] = registry_bearer_fields(
                source, self.schema_registry_logical_cluster or ""
            )
            conf["bearer.auth.custom.provider.config"] = {}
        return conf

    def _bearer_source(self) -> TokenSource | None:
        if self.schema_registry_token_provider is not None:
            provider = self.schema_registry_token_provider
            return self.token_source(provider, "--schema-registry-token-provider")
        if self.schema_registry_bearer_token is not None:
            return StaticTokenSource(self.schema_registry_bearer_token)
        return None


class RegistryWriterSettings(RegistrySettings):
    """Registry settings of a command that writes records: which framing it writes."""

    output_format: Literal["auto", "single-object", "registry"] = Field(
        "auto",
        description="Framing of the records written: Schema Registry framing (subject "
        "<topic>-value) or Avro single-object encoding; auto: registry when a Schema "
        "Registry URL is set, else single-object.",
    )

    @model_validator(mode="after")
    def _check_output_format(self) -> Self:
        if self.output_format == "registry" and self.schema_registry_url is None:
            raise ValueError("--output-format registry needs --schema-registry-url")
        return self

    @property
    def writes_registry_framing(self) -> bool:
        """Whether records are written in Schema Registry framing."""
        if self.output_format == "auto":
            return self.schema_registry_url is not None
        return self.output_format == "registry"
