"""Settings every authenticating client shares: the OIDC client of the ``oidc`` token
provider (Kafka's and the Schema Registry's), and the one switch that lets a secret travel in
clear. Both :class:`~schemas.kafka.KafkaSettings` and
:class:`~schemas.registry_settings.RegistrySettings` build on it."""

from __future__ import annotations

import re
from typing import Self
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.token_sources import (
    CallableTokenSource,
    MskIamTokenSource,
    OidcTokenSource,
    TokenSource,
)

TOKEN_PROVIDERS = ("aws-msk-iam", "oidc")
"""The token providers molstream has; anything else is a ``module:callable``."""

_CALLABLE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")

_OIDC_FIELDS = ("oidc_token_url", "oidc_client_id", "oidc_client_secret", "oidc_scope")


def option_name(field: str) -> str:
    """How a user names a setting: its flag, or its variable for an environment-only one."""
    if field.endswith(("_password", "_secret", "_token")):
        return f"MOLSTREAM_{field.upper()}"
    return f"--{field.replace('_', '-')}"


def has_credentials(url: str) -> bool:
    """Whether ``url`` carries credentials (``user:pass@host``): refused, never echoed, since
    a URL is logged and put in messages."""
    return "@" in urlsplit(url).netloc or "@" in url.partition("/")[0]


def check_token_provider(value: str | None) -> str | None:
    """A token provider setting: one of :data:`TOKEN_PROVIDERS` or ``module:callable``."""
    if value is not None and value not in TOKEN_PROVIDERS and not _CALLABLE.match(value):
        names = ", ".join(TOKEN_PROVIDERS)
        raise ValueError(f"{value!r} is not one of {names} nor module:callable")
    return value


class AuthSettings(BaseSettings):
    """The OIDC client and ``--allow-insecure-auth``."""

    model_config = SettingsConfigDict(
        env_prefix="MOLSTREAM_", extra="forbid", hide_input_in_errors=True
    )

    allow_insecure_auth: bool = Field(
        False,
        description="Allow a password or token to travel in clear (SASL PLAIN or OAUTHBEARER "
        "over SASL_PLAINTEXT, registry credentials over http://); for tests only.",
    )
    oidc_token_url: str | None = Field(
        None, description="OIDC token endpoint of the oidc token provider (https)."
    )
    oidc_client_id: str | None = Field(None, description="OIDC client id (client credentials).")
    oidc_client_secret: SecretStr | None = Field(
        None,
        description="OIDC client secret; from MOLSTREAM_OIDC_CLIENT_SECRET or a secret file, "
        "never a flag.",
        json_schema_extra={"cli": False},
    )
    oidc_scope: str | None = Field(None, description="OIDC scope requested, if any.")

    def _token_provider_options(self) -> dict[str, str | None]:
        """The token provider settings of this command, by field name."""
        names = ("sasl_oauth_token_provider", "schema_registry_token_provider")
        return {name: getattr(self, name) for name in names if name in type(self).model_fields}

    @model_validator(mode="after")
    def _check_oidc(self) -> Self:
        users = [option_name(n) for n, v in self._token_provider_options().items() if v == "oidc"]
        given = [option_name(n) for n in _OIDC_FIELDS if getattr(self, n) is not None]
        if users:
            missing = [option_name(n) for n in _OIDC_FIELDS[:3] if getattr(self, n) is None]
            if missing:
                raise ValueError(f"{users[0]} oidc needs {', '.join(missing)}")
            assert self.oidc_token_url is not None
            if has_credentials(self.oidc_token_url):
                raise ValueError(
                    "--oidc-token-url: credentials in the URL are refused (they would be "
                    "logged): give --oidc-client-id and MOLSTREAM_OIDC_CLIENT_SECRET instead"
                )
            if self.oidc_token_url.startswith("http://") and not self.allow_insecure_auth:
                raise ValueError(
                    "--oidc-token-url over http:// sends the client secret in clear: "
                    "use https://, or give --allow-insecure-auth"
                )
            if not self.oidc_token_url.startswith(("http://", "https://")):
                raise ValueError("--oidc-token-url is not an http:// or https:// URL")
        elif given:
            options = " or ".join(option_name(n) for n in self._token_provider_options())
            raise ValueError(f"{', '.join(given)} without {options} oidc")
        return self

    def token_source(self, provider: str, option: str) -> TokenSource:
        """The token source a provider setting names (``option``: its flag, for messages)."""
        if provider == "aws-msk-iam":
            return MskIamTokenSource()
        if provider == "oidc":
            assert self.oidc_token_url is not None and self.oidc_client_id is not None
            assert self.oidc_client_secret is not None  # checked above
            return OidcTokenSource(
                self.oidc_token_url, self.oidc_client_id, self.oidc_client_secret, self.oidc_scope
            )
        return CallableTokenSource(provider, option)
