"""Issue 17 item 8: the lag counts records not yet fetched, on the embedded broker too (Tansu
0.6 answers ListOffsets with the last record batch's base offset + 1; its fetches report the
right high watermark). Real broker, real Ray, ``molstream consume`` scraped on /metrics."""

from __future__ import annotations

import time
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from consumer.dev.broker import EmbeddedBroker
from consumer.dev.localserver import free_port
from consumer.dev.raycluster import LocalCluster
from tests.harness import consume_command, publish, synthetic_molecules, wait_until
from tests.integration.test_nothing_lost import consumer_process

pytestmark = pytest.mark.integration

BACKLOG = 2000
MAX_IN_FLIGHT = 64


def _sample(port: int) -> tuple[float, float] | None:
    """(lag summed over partitions, molecules in flight) from the endpoint; None before it
    serves or before a lag was read."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
    except (urllib.error.URLError, OSError):
        return None
    values: dict[str, list[float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            values.setdefault(sample.name, []).append(sample.value)
    lags = values.get("molstream_consumer_lag")
    if not lags:
        return None
    return sum(lags), sum(values.get("molstream_in_flight_molecules", [0.0]))


@pytest.mark.timeout(300)
async def test_the_lag_metric_counts_the_unfetched_backlog(
    broker: EmbeddedBroker, ray_cluster: LocalCluster, tmp_path: object
) -> None:
    ray_cluster.add_spot_node()
    # One producer, default batching: the backlog lands in a few record batches, so
    # ListOffsets alone reads a small fraction of it.
    await publish(broker.bootstrap_servers, "molecules", synthetic_molecules(BACKLOG))
    port = free_port()
    argv = consume_command(
        broker.bootstrap_servers,
        ray_cluster.address,
        *("--model", "synthetic", "--model-option", "per_molecule_ms=10"),
        *("--max-in-flight", str(MAX_IN_FLIGHT), "--batch-size", "32"),
        *("--max-workers", "1", "--group-id", "lag-test", "--metrics-port", str(port)),
    )
    seen: list[tuple[float, float]] = []

    def sampled() -> bool:
        sample = _sample(port)
        if sample is not None:
            seen.append(sample)
        return sample is not None and sample[0] >= BACKLOG / 2

    started = time.monotonic()
    with consumer_process(argv, f"{tmp_path}/consumer.log") as proc:
        await wait_until(sampled, 120, f"a lag of at least {BACKLOG // 2}", poll_s=0.5)
        took_s = time.monotonic() - started
        assert proc.poll() is None, "the consumer runs"
    lag, in_flight = seen[-1]
    print(
        f"lag {lag:.0f} with {in_flight:.0f} in flight (max {MAX_IN_FLIGHT}) "
        f"{took_s:.1f} s after start; samples (lag, in flight): {seen[-5:]}"
    )
    assert in_flight <= MAX_IN_FLIGHT < lag
