"""Issue 11 acceptance: Schema Registry framing in and out, headers carried through, Apache
avro's fingerprint accepted, registry outages lose nothing. Real broker, real Ray, the test
registry driven only by confluent-kafka's real clients."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import MutableMapping
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import avro.io
import avro.schema
import pytest
import structlog
from confluent_kafka.schema_registry import SchemaRegistryClient, header_schema_id_serializer
from confluent_kafka.schema_registry.avro import AvroSerializer
from prometheus_client import CollectorRegistry

from consumer.dev.broker import EmbeddedBroker
from consumer.dev.raycluster import LocalCluster
from consumer.ops.metrics import PrometheusHooks
from consumer.processor import StreamProcessor
from consumer.settings import ConsumerSettings
from schemas import MOLECULE_CODEC, PREDICTION_CODEC, Molecule
from schemas.codec import schema_text
from schemas.framing import VALUE_SCHEMA_ID_HEADER
from tests.harness import (
    OutputWatcher,
    committed,
    consumer_settings,
    publish_raw,
    read_raw,
    synthetic_molecules,
    wait_until,
)
from tests.integration.registry_helpers import (
    Raw,
    molecule_serializer,
    produce_confluent,
    read_confluent,
    serialize,
)
from tests.integration.schema_registry import SchemaRegistryServer
from tests.integration.test_cli import molstream

pytestmark = pytest.mark.integration


def settings_for(
    broker: EmbeddedBroker, cluster: LocalCluster, **overrides: object
) -> ConsumerSettings:
    defaults: dict[str, object] = {"min_workers": 1, "max_workers": 2, "group_id": "registry"}
    return consumer_settings(broker.bootstrap_servers, cluster.address, **{**defaults, **overrides})


def _results_cli(bootstrap: str, registry_url: str, count: int) -> list[dict[str, Any]]:
    done = molstream(
        "results",
        "--bootstrap-servers",
        bootstrap,
        "--schema-registry-url",
        registry_url,
        "--max",
        str(count),
        "--timeout-s",
        "10",
    )
    assert done.returncode == 0, done.stderr
    assert "undecodable" not in done.stderr, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def _as_json(value: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in value.items()}


def _trace(i: int) -> list[tuple[str, bytes]]:
    traceparent = f"00-{i:032x}-{i + 7:016x}-01".encode()
    return [("traceparent", traceparent), ("tracestate", f"molstream=t{i}".encode())]


async def test_avro_serializer_in_avro_deserializer_out(
    broker: EmbeddedBroker, ray_cluster: LocalCluster, registry_server: SchemaRegistryServer
) -> None:
    """500 molecules from AvroSerializer → 500 predictions AvroDeserializer reads, equal to
    what ``molstream results`` prints; 100 traceparents carried; offsets committed."""
    ray_cluster.add_spot_node()
    molecules = synthetic_molecules(500)
    serializer = molecule_serializer(registry_server.url)
    traced = {m.id: _trace(i) for i, m in enumerate(molecules[:100])}
    records: list[Raw] = []
    for m in molecules:
        headers = list(traced.get(m.id, []))
        records.append((m.id.encode(), serialize(serializer, "molecules", m, headers), headers))
    ends = await produce_confluent(broker.bootstrap_servers, "molecules", records)
    settings = settings_for(broker, ray_cluster, schema_registry_url=registry_server.url)
    async with StreamProcessor(settings) as processor:
        read = await read_confluent(
            broker.bootstrap_servers, "predictions", registry_server.url, len(molecules)
        )
        await wait_until(
            lambda: all(processor.committed.get(tp) == end for tp, end in ends.items()),
            30,
            "every offset committed",
        )
    assert sorted(value["id"] for _, value, _ in read) == sorted(m.id for m in molecules)
    assert all(key == value["id"].encode() for key, value, _ in read)
    assert {value["status"] for _, value, _ in read} == {"OK"}
    # The trace context arrives unchanged on exactly the predictions of traced inputs.
    carried = {value["id"]: headers for _, value, headers in read if headers}
    assert carried == traced
    # Registry fetches happen once per id, not per record.
    assert registry_server.requests["GET /schemas/ids"] <= 2
    assert await committed(broker.bootstrap_servers, "registry", ends) == ends
    printed = await asyncio.to_thread(
        _results_cli, broker.bootstrap_servers, registry_server.url, len(molecules)
    )
    assert sorted(printed, key=lambda p: p["id"]) == sorted(
        (_as_json(value) for _, value, _ in read), key=lambda p: p["id"]
    )


def _apache_avro_single_object(molecule: Molecule) -> bytes:
    """A Molecule v2 value framed as Apache's Python avro frames it: its own fingerprint,
    its own body encoder."""
    schema = avro.schema.parse(schema_text("molecule"))
    body = io.BytesIO()
    datum = {
        "id": molecule.id,
        "smiles": molecule.smiles,
        "properties": molecule.properties,
        "submitted_at": molecule.submitted_at,
    }
    avro.io.DatumWriter(schema).write(datum, avro.io.BinaryEncoder(body))
    return b"\xc3\x01" + schema.fingerprint() + body.getvalue()


async def test_a_mixed_topic_is_read_record_by_record(
    broker: EmbeddedBroker, ray_cluster: LocalCluster, registry_server: SchemaRegistryServer
) -> None:
    """Single-object (spec and Apache avro fingerprints), registry-framed, header-id and
    garbage records interleaved: each valid one predicted, each bad one a dead letter."""
    ray_cluster.add_spot_node()
    prefixed = molecule_serializer(registry_server.url)
    in_header = molecule_serializer(
        registry_server.url, conf={"schema.id.serializer": header_schema_id_serializer}
    )
    protein = _protein_serializer(registry_server.url)
    valid: list[Raw] = []
    bad: dict[bytes, tuple[Raw, str, str]] = {}  # key -> record, class, message part
    for i, m in enumerate(synthetic_molecules(240, prefix="v")):
        key, headers = m.id.encode(), [("n", str(i).encode())]
        kind = i % 4
        if kind == 0:
            value = MOLECULE_CODEC.encode(m)
        elif kind == 1:  # with a timestamp: the logical type is where the fingerprints differ
            value = _apache_avro_single_object(replace(m, submitted_at=datetime.now(UTC)))
        elif kind == 2:
            value = serialize(prefixed, "molecules", m, headers)
        else:
            value = serialize(in_header, "molecules", m, headers)
        valid.append((key, value, headers))
    garbage: list[tuple[bytes | None, list[tuple[str, bytes]], str, str]] = [
        (b"garbage", [], "BadMagicError", "neither Avro single-object"),
        (b"\x00\x00\x01", [], "BadMagicError", "shorter than the Schema Registry header"),
        (b"\x00\x00\x00\x30\x39" + b"\x02a\x02C\x00\x00", [], "UnknownSchemaError", "12345"),
        (b"\x02a", [(VALUE_SCHEMA_ID_HEADER, b"\x07")], "BadMagicError", VALUE_SCHEMA_ID_HEADER),
        (
            serialize(protein, "proteins", Molecule("p", "x"), []),
            [],
            "IncompatibleSchemaError",
            "lab.Protein (schema id 2) cannot resolve to molstream.Molecule",
        ),
    ]
    for i in range(40):
        garbage_value, garbage_headers, cls, part = garbage[i % len(garbage)]
        key = f"bad-{i}".encode()
        bad[key] = ((key, garbage_value, garbage_headers), cls, part)
    mixed = [r for pair in zip(valid[:40], (b[0] for b in bad.values()), strict=True) for r in pair]
    await publish_raw(broker.bootstrap_servers, "molecules", mixed + valid[40:])
    settings = settings_for(
        broker,
        ray_cluster,
        schema_registry_url=registry_server.url,
        output_format="single-object",
    )
    async with (
        OutputWatcher(broker.bootstrap_servers) as out,
        StreamProcessor(settings),
    ):
        await wait_until(lambda: out.total >= len(valid), 120, "a prediction per valid record")
        letters = await read_raw(broker.bootstrap_servers, "molecules.dlq")
        predictions = await read_raw(broker.bootstrap_servers, "predictions")
    assert set(out.ids) == {k.decode() for k, _, _ in valid if k} and out.total == len(valid)
    assert len(letters) == len(bad)
    for record in letters:
        (_, sent, _), cls, part = bad[record.key]  # type: ignore[attr-defined]
        assert record.value == sent  # type: ignore[attr-defined]
        extra = dict(record.headers)  # type: ignore[attr-defined]
        assert extra["molstream.error.class"] == cls.encode(), extra
        assert part in extra["molstream.error.message"].decode(), extra
    # Headers travel on; the input's __value_schema_id does not (it names the input schema).
    for record in predictions:
        prediction = PREDICTION_CODEC.decode(record.value)  # type: ignore[attr-defined]
        assert dict(record.headers) == {"n": str(int(prediction.id[1:])).encode()}  # type: ignore[attr-defined]


def _protein_serializer(registry_url: str) -> AvroSerializer:
    """A registered schema that is no molecule at all."""
    protein = {
        "type": "record",
        "name": "Protein",
        "namespace": "lab",
        "fields": [{"name": "id", "type": "string"}, {"name": "sequence", "type": "string"}],
    }
    serializer: AvroSerializer = AvroSerializer(
        SchemaRegistryClient({"url": registry_url}),
        json.dumps(protein),
        lambda m, ctx: {"id": m.id, "sequence": m.smiles},
    )
    return serializer


async def test_without_a_registry_url_registry_framing_is_a_dead_letter_naming_the_flag(
    broker: EmbeddedBroker, ray_cluster: LocalCluster, registry_server: SchemaRegistryServer
) -> None:
    ray_cluster.add_spot_node()
    serializer = molecule_serializer(registry_server.url)
    framed: list[Raw] = [
        (m.id.encode(), serialize(serializer, "molecules", m, []), [])
        for m in synthetic_molecules(20, prefix="r")
    ]
    plain: list[Raw] = [
        (m.id.encode(), MOLECULE_CODEC.encode(m), []) for m in synthetic_molecules(20, prefix="s")
    ]
    await publish_raw(broker.bootstrap_servers, "molecules", framed + plain)
    async with (
        OutputWatcher(broker.bootstrap_servers) as out,
        StreamProcessor(settings_for(broker, ray_cluster)),
    ):
        await wait_until(lambda: out.total >= len(plain), 120, "the single-object ones")
        letters = await read_raw(broker.bootstrap_servers, "molecules.dlq")
    assert set(out.ids) == {f"s{i}" for i in range(20)}
    assert len(letters) == len(framed)
    assert {r.key for r in letters} == {k for k, _, _ in framed}  # type: ignore[attr-defined]
    for record in letters:
        headers = dict(record.headers)  # type: ignore[attr-defined]
        assert headers["molstream.error.class"] == b"NoRegistryError"
        assert headers["molstream.error.message"] == (
            b"Schema Registry framing (schema id 1): set --schema-registry-url"
        )


class _Events:
    """Log lines of the processor, captured."""

    def __init__(self) -> None:
        self.lines: list[dict[str, Any]] = []

    def __call__(
        self, logger: Any, name: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        self.lines.append(dict(event))
        return event

    def count(self, event: str) -> int:
        return sum(1 for line in self.lines if line.get("event") == event)


async def test_registry_outages_lose_nothing(
    broker: EmbeddedBroker, ray_cluster: LocalCluster
) -> None:
    """Down at start-up: retried with backoff, logged, counted. Down later: cached ids keep
    flowing, a new id waits (no dead letter), and everything arrives once it is back."""
    ray_cluster.add_spot_node()
    registry = SchemaRegistryServer()  # not started yet: connection refused
    metrics = PrometheusHooks(CollectorRegistry())

    def registry_errors(operation: str = "get_latest_version") -> float:
        value = metrics.registry.get_sample_value(
            "molstream_schema_registry_errors_total", {"operation": operation}
        )
        return value or 0.0

    settings = settings_for(
        broker,
        ray_cluster,
        schema_registry_url=registry.url,
        output_format="single-object",
        commit_interval_s=0.2,
    )
    events = _Events()
    structlog.configure(processors=[events, structlog.processors.KeyValueRenderer()])
    try:
        processor = StreamProcessor(settings, hooks=metrics)
        starting = asyncio.create_task(processor.start())
        await wait_until(lambda: registry_errors() >= 2, 30, "start-up retries counted")
        assert not starting.done()
        assert events.count("schema registry unreachable, will retry") >= 2
        registry.start()
        await asyncio.wait_for(starting, 60)
        async with OutputWatcher(broker.bootstrap_servers) as out:
            v2 = molecule_serializer(registry.url)
            first = synthetic_molecules(50, prefix="a")
            await publish_raw(
                broker.bootstrap_servers,
                "molecules",
                [(m.id.encode(), serialize(v2, "molecules", m, []), []) for m in first],
            )
            await wait_until(lambda: out.total >= 50, 120, "the first id's records")
            # A second writer schema (version 1) is registered, but molstream has not
            # fetched it yet when the registry goes away.
            v1 = molecule_serializer(registry.url, schema="molecule.v1")
            later = synthetic_molecules(50, prefix="b")
            new_id: list[Raw] = [
                (m.id.encode(), serialize(v1, "molecules", m, []), []) for m in later
            ]
            registry.stop()
            refused_before = registry_errors("get_schema")
            cached = synthetic_molecules(50, prefix="c")
            await publish_raw(
                broker.bootstrap_servers,
                "molecules",
                new_id + [(m.id.encode(), serialize(v2, "molecules", m, []), []) for m in cached],
            )
            await wait_until(lambda: out.total >= 100, 120, "cached id flows while down")
            # The new id's schema was asked for and refused: its records wait, not pass.
            await wait_until(
                lambda: registry_errors("get_schema") > refused_before,
                60,
                "the new id's writer schema asked for",
            )
            assert not any(m.id in out.ids for m in later), "a new id waits for the registry"
            registry.start()
            await wait_until(lambda: out.total >= 150, 120, "the waiting records, once back")
        letters = await read_raw(broker.bootstrap_servers, "molecules.dlq", timeout_s=1)
    finally:
        structlog.reset_defaults()
        await processor.stop()
        registry.stop()
    assert set(out.ids) == {m.id for m in [*first, *later, *cached]} and out.duplicates() == 0
    assert letters == []
    assert metrics.registry.get_sample_value(
        "molstream_schema_registry_errors_total", {"operation": "get_schema"}
    )


async def test_produce_writes_registry_framing_under_the_topics_subject(
    broker: EmbeddedBroker, registry_server: SchemaRegistryServer, tmp_path: Path
) -> None:
    (tmp_path / "a.smi").write_text("CCO ethanol\nc1ccccc1 benzene\n")
    common = ["produce", str(tmp_path / "a.smi"), "--bootstrap-servers", broker.bootstrap_servers]
    done = await asyncio.to_thread(molstream, *common, "--schema-registry-url", registry_server.url)
    assert done.returncode == 0, done.stderr
    read = await read_confluent(broker.bootstrap_servers, "molecules", registry_server.url, 2)
    assert {key: value["smiles"] for key, value, _ in read} == {
        b"ethanol": "CCO",
        b"benzene": "c1ccccc1",
    }
    client = SchemaRegistryClient({"url": registry_server.url})
    assert client.get_compatibility("molecules-value") == "BACKWARD"
    refused = await asyncio.to_thread(molstream, *common, "--output-format", "registry")
    assert refused.returncode == 2
    assert "--output-format registry needs --schema-registry-url" in refused.stderr
