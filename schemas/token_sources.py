"""Where a bearer token comes from (Kafka's SASL OAUTHBEARER, the Schema Registry's bearer
auth): AWS MSK IAM, an OIDC token endpoint, or a function of the user's.

A source is synchronous and caches its token: the registry client calls it from its worker
thread, aiokafka through :class:`schemas.kafka_token.KafkaTokenProvider` (in a thread, so a
slow token endpoint never blocks the event loop). A source that is refused raises
:class:`TokenRefusedError` (a refused login, never retried); an endpoint that cannot be
reached raises :class:`OSError` (an outage, retried like an unreachable broker).
"""

from __future__ import annotations

import base64
import importlib
import json
import os
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from pydantic import SecretStr

if TYPE_CHECKING:
    import urllib.request

REFRESH_AFTER_FRACTION = 0.8
"""A cached token is fetched again once this fraction of its lifetime has passed: before it
expires, with time left to retry."""

DEFAULT_LIFETIME_S = 300.0
"""Lifetime assumed for an OIDC token whose answer has no ``expires_in``."""

COME_BACK_LATER = frozenset({408, 425, 429})
"""HTTP statuses under 500 that ask the client to try again later (Request Timeout, Too Early,
Too Many Requests): an outage, like a 5xx."""


class TokenRefusedError(Exception):
    """Raised when a token source is refused or misconfigured (names the setting, never a
    secret): retrying would not help."""


class TokenSource(Protocol):
    """Gives a current bearer token (cached, refreshed before it expires)."""

    def token(self) -> str:
        """The token; may block (network)."""
        ...


@dataclass(frozen=True)
class _Cached:
    value: str
    refresh_at: float


class _Caching:
    """A token kept until ``REFRESH_AFTER_FRACTION`` of its lifetime, fetched by one thread."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._cached: _Cached | None = None

    def token(self) -> str:
        with self._lock:
            now = self._clock()
            if self._cached is None or now >= self._cached.refresh_at:
                value, lifetime_s = self._fetch()
                self._cached = _Cached(value, now + lifetime_s * REFRESH_AFTER_FRACTION)
            return self._cached.value

    def _fetch(self) -> tuple[str, float]:
        """A new token and its lifetime in seconds."""
        raise NotImplementedError


class OidcTokenSource(_Caching):
    """OAuth 2.0 client-credentials grant (RFC 6749, 4.4) against ``token_url``."""

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: SecretStr,
        scope: str | None = None,
        *,
        timeout_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(clock)
        self.token_url = token_url
        self._client_id = client_id
        self._client_secret = client_secret
        self._scope = scope
        self._timeout_s = timeout_s

    def _request(self) -> urllib.request.Request:
        import urllib.request  # only when a token is asked for: keeps start-up light

        form = {"grant_type": "client_credentials"}
        if self._scope is not None:
            form["scope"] = self._scope
        # client_secret_basic (RFC 6749, 2.3.1): every server must accept it.
        pair = ":".join(
            urllib.parse.quote(part, safe="")
            for part in (self._client_id, self._client_secret.get_secret_value())
        )
        return urllib.request.Request(
            self.token_url,
            data=urllib.parse.urlencode(form).encode(),
            headers={
                "Authorization": "Basic " + base64.b64encode(pair.encode()).decode(),
                "Content-Type": "application/x-www-form-urlencoded",
                "Accept": "application/json",
            },
            method="POST",
        )

    def _fetch(self) -> tuple[str, float]:
        import urllib.error
        import urllib.request

        try:
            with urllib.request.urlopen(self._request(), timeout=self._timeout_s) as answer:
                body = json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            if exc.code >= 500 or exc.code in COME_BACK_LATER:  # an outage, retried
                raise OSError(f"OIDC token endpoint {self.token_url}: HTTP {exc.code}") from None
            raise TokenRefusedError(
                f"OIDC token endpoint {self.token_url} refused the client credentials "
                f"(HTTP {exc.code}): check --oidc-client-id and MOLSTREAM_OIDC_CLIENT_SECRET"
            ) from None
        except (ValueError, UnicodeDecodeError):
            raise TokenRefusedError(
                f"OIDC token endpoint {self.token_url} answered no JSON: check --oidc-token-url"
            ) from None
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise TokenRefusedError(
                f"OIDC token endpoint {self.token_url} answered no access_token: "
                "check --oidc-token-url"
            )
        lifetime_s = body.get("expires_in", DEFAULT_LIFETIME_S)
        if not isinstance(lifetime_s, int | float) or lifetime_s <= 0:
            lifetime_s = DEFAULT_LIFETIME_S
        return token, float(lifetime_s)


class MskIamTokenSource(_Caching):
    """AWS MSK IAM: a SigV4-signed token from the standard AWS credentials and region
    (``aws-msk-iam-sasl-signer-python``, the ``aws`` extra)."""

    def __init__(
        self, region: str | None = None, *, clock: Callable[[], float] = time.time
    ) -> None:
        super().__init__(clock)
        self.region = region

    def _fetch(self) -> tuple[str, float]:
        try:
            import botocore.session
            from aws_msk_iam_sasl_signer import MSKAuthTokenProvider
            from botocore.exceptions import ConnectionError as AwsUnreachable
            from botocore.exceptions import HTTPClientError
        except ImportError:
            raise TokenRefusedError(
                "--sasl-oauth-token-provider aws-msk-iam needs the aws extra: "
                "pip install 'molstream[aws]'"
            ) from None
        # AWS_REGION (newer SDKs), else botocore's AWS_DEFAULT_REGION or the profile's region.
        region = (
            self.region
            or os.environ.get("AWS_REGION")
            or botocore.session.Session().get_config_variable("region")
        )
        if not region:
            raise TokenRefusedError(
                "--sasl-oauth-token-provider aws-msk-iam needs an AWS region: set AWS_REGION "
                "or AWS_DEFAULT_REGION (or region in the AWS profile)"
            )
        try:
            token, expiry_ms = MSKAuthTokenProvider.generate_auth_token(region)
        except (AwsUnreachable, HTTPClientError) as exc:  # STS or instance metadata away
            raise OSError(
                f"--sasl-oauth-token-provider aws-msk-iam: AWS unreachable ({type(exc).__name__})"
            ) from None
        except Exception as exc:  # botocore's credential errors have no common base
            raise TokenRefusedError(
                f"--sasl-oauth-token-provider aws-msk-iam: no token ({type(exc).__name__}): "
                "check the AWS credentials (AWS_* variables, profile or instance role)"
            ) from None
        return token, max(0.0, expiry_ms / 1000 - self._clock())


class CallableTokenSource:
    """A ``module:callable`` of the user's: called with no arguments, returns the token (it
    caches as it sees fit)."""

    def __init__(self, reference: str, option: str) -> None:
        module_name, _, name = reference.partition(":")
        try:
            function = getattr(importlib.import_module(module_name), name)
        except (ImportError, AttributeError) as exc:
            raise TokenRefusedError(f"{option} {reference}: cannot be loaded ({exc})") from None
        if not callable(function):
            raise TokenRefusedError(f"{option} {reference}: not callable")
        self._function: Callable[[], object] = function
        self._reference = reference
        self._option = option

    def token(self) -> str:
        token = self._function()
        if not isinstance(token, str) or not token:
            raise TokenRefusedError(f"{self._option} {self._reference}: returned no token")
        return token


class StaticTokenSource:
    """A token given once (a secret setting)."""

    def __init__(self, token: SecretStr) -> None:
        self._token = token

    def token(self) -> str:
        return self._token.get_secret_value()


def registry_bearer_fields(
    source: TokenSource, logical_cluster: str
) -> Callable[[object], dict[str, str]]:
    """confluent-kafka's ``bearer.auth.custom.provider.function`` over a source."""

    def fields(_config: object) -> dict[str, str]:
        return {
            "bearer.auth.token": source.token(),
            "bearer.auth.logical.cluster": logical_cluster,
        }

    return fields
