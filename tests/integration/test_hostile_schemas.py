"""Issue 17 items 2 and 4 against the real broker, real Ray and the test registry: a hostile
writer schema's record is a dead letter at once, not a hung worker; a registry that refuses
molstream's credentials ends ``molstream consume`` with one line naming the settings."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
from typing import Any

import pytest
import structlog
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from prometheus_client import CollectorRegistry

from consumer.dev.broker import EmbeddedBroker
from consumer.dev.raycluster import LocalCluster
from consumer.ops.metrics import PrometheusHooks
from consumer.processor import StreamProcessor
from schemas.errors import RegistryAuthError
from schemas.framing import registry_framed
from tests.harness import (
    OutputWatcher,
    consume_command,
    publish_raw,
    read_raw,
    synthetic_molecules,
    wait_until,
)
from tests.integration.registry_helpers import Raw, molecule_serializer, serialize
from tests.integration.schema_registry import SchemaRegistryServer
from tests.integration.test_registry import _Events, settings_for
from tests.unit.test_admission import hostile_body, molecule_with

pytestmark = pytest.mark.integration


def _samples(metrics: PrometheusHooks, name: str) -> float:
    return sum(
        sample.value
        for family in metrics.registry.collect()
        for sample in family.samples
        if sample.name == name
    )


async def test_a_hostile_writer_schema_is_a_dead_letter_and_no_worker_is_lost(
    broker: EmbeddedBroker, ray_cluster: LocalCluster, registry_server: SchemaRegistryServer
) -> None:
    """Molecule-shaped with an extra array of null, a 20-byte body claiming 2^62 items, among
    200 registry-framed molecules: dead-lettered byte for byte within seconds, the 200
    predicted, no worker killed."""
    ray_cluster.add_spot_node()
    hostile_text = molecule_with({"type": "array", "items": "null"})
    client = SchemaRegistryClient({"url": registry_server.url})
    hostile_id = client.register_schema("hostile-value", Schema(hostile_text, "AVRO"))
    hostile_value = registry_framed(hostile_id, hostile_body())
    serializer = molecule_serializer(registry_server.url)
    valid: list[Raw] = [
        (m.id.encode(), serialize(serializer, "molecules", m, []), [])
        for m in synthetic_molecules(200, prefix="h")
    ]
    records = [*valid[:100], (b"hostile", hostile_value, []), *valid[100:]]
    metrics = PrometheusHooks(CollectorRegistry())
    events = _Events()
    structlog.configure(processors=[events, structlog.processors.KeyValueRenderer()])
    settings = settings_for(
        broker, ray_cluster, schema_registry_url=registry_server.url, output_format="single-object"
    )
    try:
        async with (
            OutputWatcher(broker.bootstrap_servers) as out,
            StreamProcessor(settings, hooks=metrics),
        ):
            published = time.monotonic()
            await publish_raw(broker.bootstrap_servers, "molecules", records)
            await wait_until(
                lambda: _samples(metrics, "molstream_dead_letters_total") >= 1, 30, "dead letter"
            )
            dead_lettered_s = time.monotonic() - published
            await wait_until(lambda: out.total >= len(valid), 120, "the 200 predicted")
            letters = await read_raw(broker.bootstrap_servers, "molecules.dlq")
    finally:
        structlog.reset_defaults()
    assert set(out.ids) == {k.decode() for k, _, _ in valid if k} and out.duplicates() == 0
    assert [(r.key, r.value) for r in letters] == [(b"hostile", hostile_value)]  # type: ignore[attr-defined]
    headers = dict(letters[0].headers)  # type: ignore[attr-defined]
    assert headers["molstream.error.class"] == b"RefusedSchemaError", headers
    message = headers["molstream.error.message"].decode()
    assert message.startswith(f"schema id {hostile_id} refused (zero_byte_items)"), message
    assert dead_lettered_s < 10, f"dead-lettered {dead_lettered_s:.1f} s after publishing"
    assert _samples(metrics, "molstream_worker_failures_total") == 0
    assert _samples(metrics, "molstream_batch_retries_total") == 0
    assert events.count("batch lost with its worker") == 0
    assert registry_server.requests["GET /schemas/ids"] <= 2  # one check per schema id
    print(f"hostile schema: dead-lettered {dead_lettered_s:.2f} s after publishing")


def _consume(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=180, env=env, check=False)


async def test_refused_credentials_at_start_up_exit_naming_the_registry_settings(
    broker: EmbeddedBroker, ray_cluster: LocalCluster
) -> None:
    secret = "not-the-password"
    with SchemaRegistryServer(credentials=("molstream", "the-password")) as registry:
        argv = consume_command(
            broker.bootstrap_servers,
            ray_cluster.address,
            *("--schema-registry-url", registry.url, "--schema-registry-user", "molstream"),
            "--allow-insecure-auth",  # the test's registry speaks http://
        )
        env = {**os.environ, "MOLSTREAM_SCHEMA_REGISTRY_PASSWORD": secret}
        done = await asyncio.to_thread(_consume, argv, env)
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert done.returncode == 2, done.stderr[-2000:]
    assert len(errors) == 1, done.stderr[-2000:]
    assert "refused molstream's credentials (HTTP 401)" in errors[0]
    assert "--schema-registry-url" in errors[0] and "--schema-registry-user" in errors[0]
    assert secret not in done.stderr and secret not in done.stdout
    logged: list[dict[str, Any]] = [
        json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")
    ]
    assert not any(secret in json.dumps(line) for line in logged)


async def test_refused_credentials_for_a_records_schema_end_the_service(
    broker: EmbeddedBroker, ray_cluster: LocalCluster
) -> None:
    """Credentials accepted at start-up, refused later (rotated): the first record naming an
    unknown schema ends ``run_until`` with the refusal instead of waiting forever."""
    ray_cluster.add_spot_node()
    open_registry = SchemaRegistryServer()
    open_registry.start()
    settings = settings_for(broker, ray_cluster, schema_registry_url=open_registry.url)
    async with StreamProcessor(settings) as processor:
        open_registry.stop()
        with SchemaRegistryServer(open_registry.port, credentials=("someone", "else")):
            value = registry_framed(7, hostile_body())
            await publish_raw(broker.bootstrap_servers, "molecules", [(b"k", value, [])])
            with pytest.raises(RegistryAuthError, match="--schema-registry-url"):
                await asyncio.wait_for(processor.run_until(asyncio.Event()), 60)
    assert await read_raw(broker.bootstrap_servers, "molecules.dlq", timeout_s=1) == []
