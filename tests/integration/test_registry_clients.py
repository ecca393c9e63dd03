"""Issue 11: molstream's framing against confluent-kafka's real Schema Registry clients
(``SchemaRegistryClient``, ``AvroSerializer``, ``AvroDeserializer``) and the test registry.
No broker: the bytes are handed over directly, exactly as they would sit on a topic."""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import pytest
from confluent_kafka.schema_registry import (
    Schema,
    SchemaRegistryClient,
    header_schema_id_serializer,
)
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from pydantic import SecretStr

from schemas import MOLECULE_CODEC, PREDICTION_CODEC, Molecule, Prediction, Status
from schemas.codec import schema_text
from schemas.errors import (
    IncompatibleSchemaError,
    RegistryAuthError,
    RegistryError,
    UnknownSchemaError,
)
from schemas.framing import VALUE_SCHEMA_ID_HEADER
from schemas.registry import SchemaRegistry
from schemas.registry_calls import RegistryUnavailableError
from schemas.registry_settings import RegistrySettings
from schemas.wire import Decoder, Encoder, SchemaPendingError
from tests.integration.registry_helpers import molecule_serializer, serialize
from tests.integration.schema_registry import SchemaRegistryServer

pytestmark = pytest.mark.integration

WHEN = datetime(2026, 3, 14, 15, 9, 26, 535_000, tzinfo=UTC)


def _settings(server: SchemaRegistryServer, **extra: Any) -> RegistrySettings:
    return RegistrySettings(schema_registry_url=server.url, **extra)


def _ctx(topic: str) -> SerializationContext:
    return SerializationContext(topic, MessageField.VALUE)


async def test_avro_serializer_output_decodes_once_its_id_is_fetched(
    registry_server: SchemaRegistryServer,
) -> None:
    molecule = Molecule("m1", "CCO", {"k": "v"}, WHEN)
    value = serialize(molecule_serializer(registry_server.url), "molecules", molecule, [])
    assert value[0] == 0
    async with SchemaRegistry(_settings(registry_server)) as registry:
        decoder = Decoder(MOLECULE_CODEC, registry)
        with pytest.raises(SchemaPendingError):
            decoder.decode(value)  # not fetched yet: no request from the synchronous path
        assert await decoder.decode_async(value) == molecule
        fetched = registry_server.requests["GET /schemas/ids"]
        for _ in range(100):
            assert decoder.decode(value) == molecule
        assert registry_server.requests["GET /schemas/ids"] == fetched == 1


async def test_the_header_form_names_the_schema_by_guid(
    registry_server: SchemaRegistryServer,
) -> None:
    molecule = Molecule("m2", "c1ccccc1")
    headers: list[tuple[str, bytes]] = [("traceparent", b"00-abc-def-01")]
    serializer = molecule_serializer(
        registry_server.url, conf={"schema.id.serializer": header_schema_id_serializer}
    )
    value = serialize(serializer, "molecules", molecule, headers)
    header = dict(headers)[VALUE_SCHEMA_ID_HEADER]
    assert header[0] == 1 and len(header) == 17  # magic 1 + the GUID, as Schema Registry 8
    async with SchemaRegistry(_settings(registry_server)) as registry:
        assert await Decoder(MOLECULE_CODEC, registry).decode_async(value, headers) == molecule
    assert registry_server.requests["GET /schemas/guids"] == 1


async def test_concurrent_records_of_a_new_id_share_one_fetch(
    registry_server: SchemaRegistryServer,
) -> None:
    value = serialize(molecule_serializer(registry_server.url), "molecules", Molecule("m", "C"), [])
    async with SchemaRegistry(_settings(registry_server)) as registry:
        decoder = Decoder(MOLECULE_CODEC, registry)
        decoded = await asyncio.gather(*(decoder.decode_async(value) for _ in range(50)))
    assert {m.id for m in decoded} == {"m"}
    assert registry_server.requests["GET /schemas/ids"] == 1


async def test_a_writer_schema_that_cannot_resolve_is_named(
    registry_server: SchemaRegistryServer,
) -> None:
    other = json.dumps(
        {
            "type": "record",
            "name": "Protein",
            "namespace": "lab",
            "fields": [{"name": "seq", "type": "string"}],
        }
    )
    client = SchemaRegistryClient({"url": registry_server.url})
    value = AvroSerializer(client, other)({"seq": "MKV"}, _ctx("proteins"))
    async with SchemaRegistry(_settings(registry_server)) as registry:
        with pytest.raises(IncompatibleSchemaError) as info:
            await Decoder(MOLECULE_CODEC, registry).decode_async(value)
    message = str(info.value)
    assert "lab.Protein" in message and "molstream.Molecule" in message
    assert "schema id 1" in message and "cannot resolve" in message
    assert info.value.reason == "incompatible_schema"


async def test_an_id_the_registry_does_not_have_is_an_unknown_schema(
    registry_server: SchemaRegistryServer,
) -> None:
    value = b"\x00\x00\x00\x30\x39" + MOLECULE_CODEC.encode_body(Molecule("m", "C"))
    async with SchemaRegistry(_settings(registry_server)) as registry:
        with pytest.raises(UnknownSchemaError, match="schema id 12345 is not in"):
            await Decoder(MOLECULE_CODEC, registry).decode_async(value)


async def test_predictions_in_registry_framing_read_with_avro_deserializer(
    registry_server: SchemaRegistryServer,
) -> None:
    fields = ("m1", "CCO", Status.OK, {"qed": 0.4}, None, "reference", "1", "w-1", 1)
    prediction = Prediction(*fields, "molecules", 0, 7, WHEN, 1.5)
    async with SchemaRegistry(_settings(registry_server)) as registry:
        encoder = await Encoder.for_topic(PREDICTION_CODEC, "predictions", registry)
        again = await Encoder.for_topic(PREDICTION_CODEC, "predictions", registry)
    assert encoder.schema_id == again.schema_id is not None
    client = SchemaRegistryClient({"url": registry_server.url})
    assert client.get_compatibility("predictions-value") == "BACKWARD"
    assert client.get_latest_version("predictions-value").schema_id == encoder.schema_id
    read = AvroDeserializer(client)(encoder.encode(prediction), _ctx("predictions"))
    assert read == {**asdict(prediction), "status": "OK"}


async def test_registration_respects_the_subjects_compatibility(
    registry_server: SchemaRegistryServer,
) -> None:
    """An incompatible schema under molstream's subject is refused loudly at start-up."""
    client = SchemaRegistryClient({"url": registry_server.url})
    client.set_compatibility("predictions-value", "BACKWARD")
    incompatible = json.dumps(
        {
            "type": "record",
            "name": "Prediction",
            "namespace": "molstream",
            "fields": [{"name": "id", "type": "string"}, {"name": "score", "type": "double"}],
        }
    )
    client.register_schema("predictions-value", Schema(incompatible, "AVRO"))
    async with SchemaRegistry(_settings(registry_server)) as registry:
        with pytest.raises(RegistryError, match="refused the schema for predictions-value"):
            await Encoder.for_topic(PREDICTION_CODEC, "predictions", registry)


async def test_the_current_schemas_are_backward_compatible_with_the_old(
    registry_server: SchemaRegistryServer,
) -> None:
    async with SchemaRegistry(_settings(registry_server)) as registry:
        old = await registry.register("molecules-value", schema_text("molecule.v1"))
        new = await registry.register("molecules-value", schema_text("molecule"))
    assert new != old


async def test_basic_auth_user_and_password_reach_the_registry() -> None:
    with SchemaRegistryServer(credentials=("svc", "s3cret")) as server:
        good = _settings(
            server,
            allow_insecure_auth=True,
            schema_registry_user="svc",
            schema_registry_password=SecretStr("s3cret"),
        )
        async with SchemaRegistry(good) as registry:
            assert await registry.register("molecules-value", MOLECULE_CODEC.text) == 1
        bad = _settings(
            server,
            allow_insecure_auth=True,
            schema_registry_user="svc",
            schema_registry_password=SecretStr("wrong"),
        )
        async with SchemaRegistry(bad) as registry:
            with pytest.raises(RegistryAuthError, match=r"credentials \(HTTP 401\)"):
                await registry.register("molecules-value", MOLECULE_CODEC.text)
            # A record's schema: refused at once (not waited out), and the service told.
            refused = asyncio.create_task(registry.refused())
            with pytest.raises(RegistryAuthError, match="--schema-registry-user"):
                await asyncio.wait_for(registry.writer_schema(1), 10)
            with pytest.raises(RegistryAuthError):
                await asyncio.wait_for(refused, 1)


async def test_an_unreachable_registry_is_retried_then_given_up_on() -> None:
    server = SchemaRegistryServer()  # never started: connection refused
    errors: list[str] = []
    registry = SchemaRegistry(
        _settings(server), on_error=errors.append, give_up_after_s=1.0, backoff_max_s=0.2
    )
    async with registry:
        with pytest.raises(RegistryUnavailableError, match="unreachable"):
            await registry.prime("molecules-value")
    assert len(errors) >= 2 and set(errors) == {"get_latest_version"}
