"""Issue 18 item 1: the bearer token sources. The OIDC source against a token endpoint of the
test's own (aiohttp on 127.0.0.1) with an injected clock; the MSK IAM signer from fake AWS
credentials in the environment (it signs locally: no network); a user's module:callable."""

from __future__ import annotations

import asyncio
import base64
import socket
import time
import urllib.parse
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
)
from confluent_kafka.schema_registry import SchemaRegistryClient
from pydantic import SecretStr

from schemas.kafka_token import KafkaTokenProvider
from schemas.registry_settings import RegistrySettings
from schemas.token_sources import (
    CallableTokenSource,
    MskIamTokenSource,
    OidcTokenSource,
    TokenRefusedError,
)

CLIENT_ID = "molstream"
SECRET = "oidc-Secret-never-shown"


@dataclass
class TokenEndpoint:
    """A client-credentials token endpoint: one token per request, ``lifetime_s`` each."""

    url: str = ""
    lifetime_s: int = 100
    status: int = 200
    requests: list[dict[str, str]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        form = dict(await request.post())
        kind, _, encoded = request.headers.get("Authorization", "").partition(" ")
        user, _, password = base64.b64decode(encoded).decode().partition(":")
        self.requests.append({**{k: str(v) for k, v in form.items()}, "user": user})
        if self.status != 200:
            return web.json_response({"error": "nope"}, status=self.status)
        if kind != "Basic" or urllib.parse.unquote(password) != SECRET:
            return web.json_response({"error": "invalid_client"}, status=401)
        token = f"token-{len(self.requests)}"
        return web.json_response(
            {"access_token": token, "token_type": "Bearer", "expires_in": self.lifetime_s}
        )


@pytest.fixture
async def endpoint() -> AsyncIterator[TokenEndpoint]:
    state = TokenEndpoint()
    app = web.Application()
    app.router.add_post("/token", state.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    state.url = f"http://127.0.0.1:{port}/token"
    yield state
    await runner.cleanup()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_oidc_token_is_cached_and_refreshed_before_it_expires(
    endpoint: TokenEndpoint,
) -> None:
    clock = Clock()
    source = OidcTokenSource(
        endpoint.url, CLIENT_ID, SecretStr(SECRET), "kafka", clock=clock, timeout_s=5
    )
    provider = KafkaTokenProvider(source)
    assert await provider.token() == "token-1"
    clock.now += 79  # under 80 % of the 100 s lifetime: the cached token
    assert await provider.token() == "token-1"
    assert len(endpoint.requests) == 1
    clock.now += 2  # past 80 %, still 19 s before expiry: a new one
    assert await provider.token() == "token-2"
    assert endpoint.requests[0] == {
        "grant_type": "client_credentials",
        "scope": "kafka",
        "user": CLIENT_ID,
    }


async def test_oidc_refused_credentials_are_a_refusal_without_the_secret(
    endpoint: TokenEndpoint,
) -> None:
    source = OidcTokenSource(endpoint.url, CLIENT_ID, SecretStr("wrong-" + SECRET))
    with pytest.raises(TokenRefusedError, match="refused the client credentials") as info:
        await asyncio.to_thread(source.token)
    assert SECRET not in str(info.value)
    assert "--oidc-client-id" in str(info.value)


async def test_oidc_endpoint_away_or_failing_is_an_outage(endpoint: TokenEndpoint) -> None:
    endpoint.status = 503
    failing = OidcTokenSource(endpoint.url, CLIENT_ID, SecretStr(SECRET))
    with pytest.raises(OSError, match="HTTP 503"):
        await asyncio.to_thread(failing.token)
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    away = OidcTokenSource(f"http://127.0.0.1:{port}/token", CLIENT_ID, SecretStr(SECRET))
    with pytest.raises(OSError):
        await asyncio.to_thread(away.token)


def test_msk_iam_signer_makes_a_token_from_the_aws_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLEKEY000001")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "fake-secret-access-key")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    clock = Clock()
    clock.now = time.time()
    source = MskIamTokenSource(clock=clock)
    token = source.token()
    url = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    assert url.startswith("https://kafka.eu-west-1.amazonaws.com/")
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    assert query["Action"] == ["kafka-cluster:Connect"]
    assert query["X-Amz-Credential"][0].startswith("AKIAEXAMPLEKEY000001/")
    assert "fake-secret-access-key" not in url
    assert source.token() == token  # cached until 80 % of its lifetime


def test_msk_iam_without_a_region_says_which_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
    with pytest.raises(TokenRefusedError, match="AWS_REGION or AWS_DEFAULT_REGION"):
        MskIamTokenSource().token()


def user_token() -> str:
    """A user's token function (``tests.unit.test_token_sources:user_token``)."""
    return "users-token"


def test_callable_source_loads_and_calls_the_users_function() -> None:
    source = CallableTokenSource("tests.unit.test_token_sources:user_token", "--x")
    assert source.token() == "users-token"
    with pytest.raises(TokenRefusedError, match=r"--x no\.such_module:f: cannot be loaded"):
        CallableTokenSource("no.such_module:f", "--x")


def test_registry_bearer_token_reaches_the_clients_custom_provider() -> None:
    settings = RegistrySettings(
        schema_registry_url="https://registry.example",
        schema_registry_bearer_token=SecretStr("static-bearer"),
        schema_registry_logical_cluster="lsrc-1",
    )
    conf = settings.registry_client_conf()
    assert conf["bearer.auth.credentials.source"] == "CUSTOM"
    fields = conf["bearer.auth.custom.provider.function"]({})
    assert fields == {"bearer.auth.token": "static-bearer", "bearer.auth.logical.cluster": "lsrc-1"}
    client = SchemaRegistryClient(conf)  # accepted as is (no request made)
    headers: dict[str, str] = {}
    client._rest_client.handle_bearer_auth(headers)
    assert headers["Authorization"] == "Bearer static-bearer"


@pytest.mark.parametrize("status", [408, 425, 429])
async def test_oidc_endpoint_asking_to_come_back_later_is_an_outage(
    endpoint: TokenEndpoint, status: int
) -> None:
    """Review finding 6: Request Timeout, Too Early and Too Many Requests are retried like a
    5xx, not a refusal that ends the process."""
    endpoint.status = status
    source = OidcTokenSource(endpoint.url, CLIENT_ID, SecretStr(SECRET))
    with pytest.raises(OSError, match=f"HTTP {status}"):
        await asyncio.to_thread(source.token)


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (EndpointConnectionError(endpoint_url="https://sts.eu-west-1.amazonaws.com"), OSError),
        (ConnectTimeoutError(endpoint_url="http://169.254.169.254"), OSError),
        (HTTPClientError(error="reset"), OSError),
        (NoCredentialsError(), TokenRefusedError),
        (
            PartialCredentialsError(provider="env", cred_var="AWS_SECRET_ACCESS_KEY"),
            TokenRefusedError,
        ),
        (ClientError({"Error": {"Code": "AccessDenied"}}, "AssumeRole"), TokenRefusedError),
    ],
)
def test_msk_iam_network_errors_are_outages_and_credential_errors_refusals(
    monkeypatch: pytest.MonkeyPatch, error: Exception, expected: type[Exception]
) -> None:
    """Review finding 6: STS or the instance metadata service unreachable is retried."""
    from aws_msk_iam_sasl_signer import MSKAuthTokenProvider

    def fail(region: str) -> tuple[str, int]:
        raise error

    monkeypatch.setattr(MSKAuthTokenProvider, "generate_auth_token", fail)
    with pytest.raises(expected) as info:
        MskIamTokenSource(region="eu-west-1").token()
    assert type(info.value) is expected  # ConnectTimeoutError is an OSError already
