"""Issue 17 items 2 and 4 at the registry: each schema id costs one check and, when the
registry says no, one call per ``MISSING_TTL_S``; refused credentials end the wait at once.
A small fake stands in for confluent-kafka's ``SchemaRegistryClient``."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest
from confluent_kafka.schema_registry import RegisteredSchema, Schema, SchemaRegistryError

from schemas.codec import schema_text
from schemas.errors import (
    RefusedSchemaError,
    RegistryAuthError,
    RegistryRefusedError,
    UnknownSchemaError,
)
from schemas.registry import SchemaRegistry
from schemas.registry_cache import MISSING_TTL_S
from schemas.registry_settings import RegistrySettings
from schemas.token_sources import TokenRefusedError
from schemas.wire import WriterSchemas

SECRET = "s3cret-password"
FRAMED = b"\x00\x00\x00\x00\x05" + b"\x02m\x02C\x00\x00"  # schema id 5
HOSTILE = json.loads(schema_text("molecule"))
HOSTILE["fields"].append({"name": "extra", "type": {"type": "array", "items": "null"}})


class FakeClient:
    """Answers each call from ``answers`` (a value, or an error to raise); counts calls."""

    def __init__(self, answers: dict[str, object]) -> None:
        self.answers = answers
        self.calls: Counter[str] = Counter()

    def _answer(self, operation: str) -> Any:
        self.calls[operation] += 1
        answer = self.answers[operation]
        if isinstance(answer, Exception):
            raise answer
        return answer

    def get_schema(self, schema_id: int) -> Schema:
        return self._answer("get_schema")  # type: ignore[no-any-return]

    def get_latest_version(self, subject: str) -> RegisteredSchema:
        return self._answer("get_latest_version")  # type: ignore[no-any-return]

    def get_compatibility(self, subject: str) -> str:
        return self._answer("get_compatibility")  # type: ignore[no-any-return]

    def register_schema_full_response(self, subject: str, schema: Schema) -> RegisteredSchema:
        return self._answer("register")  # type: ignore[no-any-return]

    def close(self) -> None:
        """Nothing to close."""


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _error(status: int) -> SchemaRegistryError:
    return SchemaRegistryError(status, status * 100, f"HTTP {status} from the fake")


def _registry(fake: FakeClient, clock: Clock | None = None) -> SchemaRegistry:
    settings = RegistrySettings(
        schema_registry_url="http://127.0.0.1:1",
        schema_registry_user="molstream",
        schema_registry_password=SECRET,
        allow_insecure_auth=True,  # the fake is reached over http://
    )
    return SchemaRegistry(settings, clock=clock or Clock(), client=lambda conf: fake)  # type: ignore[arg-type, return-value]


async def test_an_unknown_id_costs_one_call_per_ttl() -> None:
    fake, clock = FakeClient({"get_schema": _error(404)}), Clock()
    async with _registry(fake, clock) as registry:
        writers = WriterSchemas(registry)
        for _ in range(50):
            with pytest.raises(UnknownSchemaError, match="schema id 5 is not in"):
                await writers.fetch(FRAMED)
        assert fake.calls["get_schema"] == 1
        clock.now += MISSING_TTL_S - 1
        with pytest.raises(UnknownSchemaError):
            await writers.fetch(FRAMED)
        assert fake.calls["get_schema"] == 1
        clock.now += 1  # past the TTL: asked again, and found this time
        fake.answers["get_schema"] = Schema(schema_text("molecule"), "AVRO")
        assert await writers.fetch(FRAMED) is not None
        assert fake.calls["get_schema"] == 2


async def test_a_refused_schema_costs_one_check_and_names_its_rule() -> None:
    fake = FakeClient({"get_schema": Schema(json.dumps(HOSTILE), "AVRO")})
    async with _registry(fake) as registry:
        writers = WriterSchemas(registry)
        for _ in range(20):
            with pytest.raises(RefusedSchemaError) as info:
                await writers.fetch(FRAMED)
            assert info.value.rule == "zero_byte_items"
            assert str(info.value).startswith("schema id 5 refused (zero_byte_items)")
        assert fake.calls["get_schema"] == 1


@pytest.mark.parametrize("status", [400, 410, 422])
async def test_another_client_error_is_a_dead_letter_reason_remembered(status: int) -> None:
    fake = FakeClient({"get_schema": _error(status)})
    async with _registry(fake) as registry:
        for _ in range(3):
            with pytest.raises(RegistryRefusedError, match=f"HTTP {status}") as info:
                await registry.writer_schema(5)
            assert info.value.reason == "registry_refused"
        assert fake.calls["get_schema"] == 1


def _names_the_settings(error: BaseException) -> None:
    message = str(error)
    assert "--schema-registry-url" in message and "--schema-registry-user" in message
    assert "MOLSTREAM_SCHEMA_REGISTRY_PASSWORD" in message and SECRET not in message


@pytest.mark.parametrize("status", [401, 403])
async def test_refused_credentials_for_a_record_end_the_wait_and_the_service(status: int) -> None:
    fake = FakeClient({"get_schema": _error(status)})
    async with _registry(fake) as registry:
        refused = registry.refused()
        with pytest.raises(RegistryAuthError) as info:
            await registry.writer_schema(5)
        assert fake.calls["get_schema"] == 1  # not retried
        _names_the_settings(info.value)
        with pytest.raises(RegistryAuthError) as watched:
            await refused
        _names_the_settings(watched.value)


@pytest.mark.parametrize("operation", ["get_latest_version", "get_compatibility", "register"])
@pytest.mark.parametrize("status", [401, 403])
async def test_refused_credentials_at_start_up_are_an_error_naming_the_settings(
    operation: str, status: int
) -> None:
    fake = FakeClient({operation: _error(status), "get_compatibility": _error(status)})
    async with _registry(fake) as registry:
        with pytest.raises(RegistryAuthError) as info:
            if operation == "get_latest_version":
                await registry.prime("molecules-value")
            else:
                await registry.register("predictions-value", schema_text("prediction"))
        _names_the_settings(info.value)
        assert sum(fake.calls.values()) == 1


async def test_a_bearer_token_source_refused_ends_the_wait_and_the_service() -> None:
    refusal = TokenRefusedError("OIDC token endpoint refused the client credentials (HTTP 401)")
    fake = FakeClient({"get_schema": refusal})
    async with _registry(fake) as registry:
        refused = registry.refused()
        with pytest.raises(RegistryAuthError, match="refused the client credentials"):
            await registry.writer_schema(5)
        assert fake.calls["get_schema"] == 1  # not retried
        with pytest.raises(RegistryAuthError):
            await refused
