"""Which Kafka security settings go together: a setting the chosen protocol or mechanism would
ignore is refused (naming both options), and so is a secret that would travel in clear unless
``--allow-insecure-auth`` says so. Pure logic over the settings' values."""

from __future__ import annotations

from typing import TYPE_CHECKING

from schemas.auth_settings import option_name

if TYPE_CHECKING:
    from schemas.kafka import KafkaSettings

_TLS_FIELDS = ("ssl_cafile", "ssl_certfile", "ssl_keyfile", "ssl_keyfile_password")
_SASL_FIELDS = ("sasl_mechanism", "sasl_username", "sasl_password", "sasl_oauth_token_provider")
_PASSWORD_FIELDS = ("sasl_username", "sasl_password")


def _given(settings: KafkaSettings, fields: tuple[str, ...]) -> list[str]:
    # A default is never "given": model_fields_set holds what a flag, variable, secret file
    # or the config file set.
    return [
        f for f in fields if f in settings.model_fields_set and getattr(settings, f) is not None
    ]


def _ignored(settings: KafkaSettings) -> str | None:
    protocol = settings.security_protocol
    uses = (
        ("SSL or SASL_SSL", protocol.endswith("SSL"), _TLS_FIELDS),
        ("SASL_PLAINTEXT or SASL_SSL", protocol.startswith("SASL"), _SASL_FIELDS),
    )
    for protocols, used, fields in uses:
        given = _given(settings, fields)
        if given and not used:
            return (
                f"{option_name(given[0])} is not used under --security-protocol {protocol} "
                f"(only {protocols}): drop it or change --security-protocol"
            )
    if settings.ssl_keyfile_password is not None and settings.ssl_keyfile is None:
        return "MOLSTREAM_SSL_KEYFILE_PASSWORD without --ssl-keyfile"
    if settings.ssl_keyfile is not None and settings.ssl_certfile is None:
        return "--ssl-keyfile without --ssl-certfile: aiokafka would ignore the key"
    return None


def _mechanism(settings: KafkaSettings) -> str | None:
    mechanism = settings.sasl_mechanism
    if mechanism == "OAUTHBEARER":
        given = _given(settings, _PASSWORD_FIELDS)
        if given:
            return (
                f"{option_name(given[0])} is not used with --sasl-mechanism OAUTHBEARER "
                "(the token comes from --sasl-oauth-token-provider)"
            )
        if settings.sasl_oauth_token_provider is None:
            return "--sasl-mechanism OAUTHBEARER needs --sasl-oauth-token-provider"
        return None
    if settings.sasl_oauth_token_provider is not None:
        return (
            f"--sasl-oauth-token-provider is not used with --sasl-mechanism {mechanism} "
            "(only OAUTHBEARER)"
        )
    if settings.sasl_username is None or settings.sasl_password is None:
        return (
            f"--security-protocol {settings.security_protocol} with --sasl-mechanism "
            f"{mechanism} needs --sasl-username and MOLSTREAM_SASL_PASSWORD"
        )
    return None


def _in_clear(settings: KafkaSettings) -> str | None:
    # SCRAM never sends the password itself; PLAIN sends it, OAUTHBEARER a bearer token.
    if (
        settings.security_protocol == "SASL_PLAINTEXT"
        and settings.sasl_mechanism in ("PLAIN", "OAUTHBEARER")
        and not settings.allow_insecure_auth
    ):
        what = "password" if settings.sasl_mechanism == "PLAIN" else "token"
        return (
            f"--sasl-mechanism {settings.sasl_mechanism} under --security-protocol "
            f"SASL_PLAINTEXT sends the {what} in clear: use SASL_SSL (or a SCRAM mechanism), "
            "or give --allow-insecure-auth"
        )
    return None


def check_kafka_security(settings: KafkaSettings) -> None:
    """Raise ``ValueError`` naming the options when the security settings do not fit."""
    problem = _ignored(settings)
    if problem is None and settings.security_protocol.startswith("SASL"):
        problem = _mechanism(settings) or _in_clear(settings)
    if problem is not None:
        raise ValueError(problem)
