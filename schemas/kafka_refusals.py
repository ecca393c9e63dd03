"""A refused login is not an outage: telling a broker that says "no" (authentication or
authorization) from one that is away, and the one line that names the setting to fix.

aiokafka hides a refused SASL login behind "Unable to bootstrap" (its bootstrap treats every
failed connection alike), and its SCRAM client raises ``KeyError('v')`` on a server's error
reply (DESIGN.md, broker notes); :func:`raise_if_refused` sees through both. Messages name
settings, never their values.
"""

from __future__ import annotations

import asyncio
import os
from typing import TYPE_CHECKING, NoReturn

import typer
from aiokafka.errors import (
    AuthenticationFailedError,
    AuthenticationMethodNotSupported,
    ClusterAuthorizationFailedError,
    GroupAuthorizationFailedError,
    IllegalSaslStateError,
    KafkaConnectionError,
    KafkaError,
    SaslAuthenticationFailed,
    TopicAuthorizationFailedError,
    TransactionalIdAuthorizationFailed,
    UnsupportedSaslMechanismError,
)

from schemas.token_sources import TokenRefusedError

if TYPE_CHECKING:
    from schemas.kafka import KafkaSettings

_AUTHENTICATION = (
    AuthenticationFailedError,
    AuthenticationMethodNotSupported,
    IllegalSaslStateError,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
)
_AUTHORIZATION = {
    TopicAuthorizationFailedError: "a topic",
    GroupAuthorizationFailedError: "the consumer group",
    ClusterAuthorizationFailedError: "the cluster",
    TransactionalIdAuthorizationFailed: "the transactional id",
}

_AIOKAFKA_CONN = os.path.join("aiokafka", "conn.py")


class KafkaAuthError(Exception):
    """Raised when the brokers refuse molstream's login or its rights: one line naming the
    settings to check. Never retried."""


class KafkaCredentialsError(KafkaAuthError):
    """Raised when molstream's own TLS client certificate cannot be used (a key its password
    does not open, a key that does not match the certificate): refused before any broker."""


KAFKA_FAILURES = (KafkaError, OSError, TimeoutError, KeyError, TokenRefusedError, KafkaAuthError)
"""What connecting or talking to Kafka may raise, refusals included (see :func:`is_refusal`)."""


def _scram_refused(exc: BaseException) -> bool:
    """aiokafka's SCRAM client reading a server's error reply (``e=...``) as a final one."""
    if not isinstance(exc, KeyError):
        return False
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename.endswith(_AIOKAFKA_CONN):
            return True
        tb = tb.tb_next
    return False


def is_refusal(exc: BaseException) -> bool:
    """Whether ``exc`` is the brokers (or a token source) refusing, not an outage."""
    refusals = (KafkaAuthError, TokenRefusedError, *_AUTHENTICATION, *_AUTHORIZATION)
    return isinstance(exc, refusals) or _scram_refused(exc)


def credential_options(kafka: KafkaSettings) -> str:
    """The settings that say who molstream is to the brokers."""
    protocol = kafka.security_protocol
    if protocol.startswith("SASL") and kafka.sasl_mechanism == "OAUTHBEARER":
        return "--sasl-oauth-token-provider"
    if protocol.startswith("SASL"):
        mechanism = kafka.sasl_mechanism
        return f"--sasl-mechanism ({mechanism}), --sasl-username and MOLSTREAM_SASL_PASSWORD"
    if protocol == "SSL":
        return "--ssl-certfile and --ssl-keyfile"
    return "--security-protocol (PLAINTEXT: no credentials)"


def refusal_message(kafka: KafkaSettings, exc: BaseException) -> str | None:
    """The one line for a refusal, or None if ``exc`` is not one."""
    if isinstance(exc, KafkaAuthError):
        return str(exc)
    # A token refused in a login comes as the SASL failure aiokafka handles (kafka_token).
    token = exc.__cause__ if isinstance(exc, SaslAuthenticationFailed) else exc
    if isinstance(token, TokenRefusedError):
        return f"Kafka authentication failed: no token: {token}"
    if isinstance(exc, _AUTHENTICATION) or _scram_refused(exc):
        reason = "a SCRAM error reply" if _scram_refused(exc) else type(exc).__name__
        return (
            f"Kafka authentication failed: {kafka.bootstrap_servers} refused the login "
            f"({reason}): check {credential_options(kafka)}"
        )
    for error, what in _AUTHORIZATION.items():
        if isinstance(exc, error):
            return (
                f"Kafka authorization failed: the brokers refuse access to {what} "
                f"({type(exc).__name__}: {exc}): grant it to the principal of "
                f"{credential_options(kafka)}"
            )
    return None


async def probe_login(kafka: KafkaSettings) -> str | None:
    """Log in to each bootstrap server directly (no bootstrap to hide the answer): the
    refusal's line, or None if a server accepts the login or none can be reached."""
    from aiokafka.conn import collect_hosts, create_conn

    kwargs = kafka.client_kwargs()
    # aiokafka's own parsing: a bracketed IPv6 address, a host without a port
    for host, port, _ in collect_hosts(kwargs.pop("bootstrap_servers"), randomize=False):
        try:
            async with asyncio.timeout(kafka.broker_timeout_s):
                conn = await create_conn(host, port, **kwargs)
        except (OSError, TimeoutError):
            continue
        except Exception as exc:
            message = refusal_message(kafka, exc)
            if message is not None:
                return message
            continue
        conn.close()
        return None
    return None


async def raise_if_refused(kafka: KafkaSettings, exc: BaseException) -> None:
    """Raise :class:`KafkaAuthError` if ``exc`` (from connecting) is a refusal; a failed
    bootstrap over SSL or SASL is asked again by :func:`probe_login`."""
    message = refusal_message(kafka, exc)
    if (
        message is None
        and isinstance(exc, KafkaConnectionError)
        and kafka.security_protocol != "PLAINTEXT"
    ):
        message = await probe_login(kafka)
    if message is not None:
        raise KafkaAuthError(message) from None


def exit_if_refused(kafka: KafkaSettings, exc: BaseException) -> None:
    """For a command line: print the refusal's line and exit with status 2; re-raise an
    exception that is neither a refusal nor a Kafka failure; else return."""
    try:
        asyncio.run(raise_if_refused(kafka, exc))
    except KafkaAuthError as refused:
        _fail(str(refused))
    if not isinstance(exc, KafkaError | OSError | TimeoutError):
        raise exc


def exit_on_kafka_failure(kafka: KafkaSettings, exc: BaseException) -> NoReturn:
    """For a command line: a refusal exits as :func:`exit_if_refused` does; any other Kafka
    failure prints that the brokers could not be reached and exits with status 1."""
    exit_if_refused(kafka, exc)
    typer.secho(f"error: cannot reach {kafka.bootstrap_servers}: {exc!r}", err=True, fg="red")
    raise typer.Exit(1) from None


def _fail(line: str) -> NoReturn:
    typer.secho(f"error: {line}", err=True, fg="red")
    raise typer.Exit(2)
