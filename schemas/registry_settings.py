"""How to reach a Schema Registry, and which framing to write: settings shared by
``consume``, ``produce`` and ``results`` (each field a ``--option`` and a ``MOLSTREAM_*``
variable). It lives here because the consumer and the producer both build on it."""

from __future__ import annotations

from typing import Any, Literal, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class RegistrySettings(BaseSettings):
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
    schema_registry_timeout_s: float = Field(
        10.0, gt=0, description="Upper bound of a single Schema Registry request."
    )

    @field_validator("schema_registry_url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        for url in (u.strip() for u in value.split(",")):
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"{url!r} is not an http:// or https:// URL")
        return value

    @model_validator(mode="after")
    def _check_registry(self) -> Self:
        if (self.schema_registry_user is None) != (self.schema_registry_password is None):
            raise ValueError(
                "--schema-registry-user and MOLSTREAM_SCHEMA_REGISTRY_PASSWORD go together"
            )
        if self.schema_registry_url is None:
            given = [
                option
                for option, value in (
                    ("--schema-registry-user", self.schema_registry_user),
                    ("--schema-registry-ca-file", self.schema_registry_ca_file),
                )
                if value is not None
            ]
            if given:
                raise ValueError(f"{', '.join(given)} without --schema-registry-url")
        return self

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
        if self.schema_registry_ca_file is not None:
            conf["ssl.ca.location"] = self.schema_registry_ca_file
        if self.schema_registry_password is not None:
            password = self.schema_registry_password.get_secret_value()
            conf["basic.auth.user.info"] = f"{self.schema_registry_user}:{password}"
        return conf


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
