"""Issue 9 acceptance: the consumer stays in its Kafka group through long stalls (a Spot
drought longer than the poll interval, batches slower than the session timeout during a
rebalance) and exits cleanly when the Ray head is lost. Real broker, real Ray."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from pathlib import Path

import pytest
from aiokafka import TopicPartition

from consumer.dev.broker import EmbeddedBroker
from consumer.dev.raycluster import LocalCluster
from consumer.processor import StreamProcessor
from consumer.runner import RAY_LOST_EXIT_CODE
from consumer.settings import ConsumerSettings
from tests.harness import (
    Counting,
    OutputWatcher,
    committed,
    consume_command,
    consumer_settings,
    publish,
    synthetic_molecules,
    wait_until,
)
from tests.integration.test_nothing_lost import consumer_process

pytestmark = pytest.mark.integration


def settings_for(
    broker: EmbeddedBroker, cluster: LocalCluster, **overrides: object
) -> ConsumerSettings:
    return consumer_settings(broker.bootstrap_servers, cluster.address, **overrides)


async def test_a_capacity_drought_longer_than_the_poll_interval_keeps_the_member(
    broker: EmbeddedBroker, ray_cluster: LocalCluster
) -> None:
    max_poll_interval_s = 20
    inputs = synthetic_molecules(3000)
    ends = await publish(broker.bootstrap_servers, "molecules", inputs)
    settings = settings_for(
        broker,
        ray_cluster,
        group_id="drought",
        max_in_flight=500,
        min_workers=1,
        max_workers=2,
        max_poll_interval_s=max_poll_interval_s,
        shutdown_timeout_s=10,
    )
    async with OutputWatcher(broker.bootstrap_servers) as out, StreamProcessor(settings) as proc:
        await wait_until(lambda: proc.health().assigned, 60, "partitions assigned")
        # No Spot node at all for 1.5 poll intervals: the window fills, fetching pauses.
        await asyncio.sleep(max_poll_interval_s * 1.5)
        assert out.total == 0
        assert proc.health().polled_s_ago < 5, "a paused consumer keeps polling"
        for _ in range(2):
            ray_cluster.add_spot_node()
        await wait_until(lambda: len(out.ids) >= len(inputs), 240, "every molecule")
        await wait_until(lambda: proc.committed == ends, 30, "lag 0: commits reach the ends")
        assert proc.revokes == 0, "the consumer never left the group"
    assert set(out.ids) == {m.id for m in inputs}
    assert out.duplicates() == 0
    assert await committed(broker.bootstrap_servers, "drought", ends) == ends


async def test_a_revoke_with_batches_slower_than_the_session_timeout_loses_nothing(
    broker: EmbeddedBroker, ray_cluster: LocalCluster
) -> None:
    for _ in range(2):
        ray_cluster.add_spot_node(num_cpus=2)
    session_timeout_s = 6
    inputs = synthetic_molecules(240)
    ends = await publish(broker.bootstrap_servers, "molecules", inputs)
    settings = settings_for(
        broker,
        ray_cluster,
        group_id="slow-revoke",
        batch_size=10,
        batch_wait_ms=20,
        min_workers=2,
        max_workers=2,
        worker_num_cpus=0.5,
        worker_resources={"spot": 0.25},
        model_option={"per_molecule_ms": "700"},  # 7 s per batch: over the session timeout
        session_timeout_s=session_timeout_s,
        heartbeat_interval_s=2,
        rebalance_timeout_s=30,
        shutdown_timeout_s=20,
    )
    first_did, second_did = Counting(), Counting()
    async with (
        OutputWatcher(broker.bootstrap_servers) as out,
        StreamProcessor(settings, hooks=first_did) as first,
    ):
        # Join while the first consumer's workers are in the middle of their batches.
        await wait_until(
            lambda: sum(1 for w in first.pool.workers() if w.state == "busy") == 2,
            60,
            "both workers busy",
        )
        await asyncio.sleep(2)
        async with StreamProcessor(settings, hooks=second_did) as second:
            await wait_until(lambda: len(out.ids) >= len(inputs), 240, "every molecule")
            await wait_until(lambda: {**first.committed, **second.committed} == ends, 30, "lag 0")
        assert first.revokes >= 1, "the join revoked the first consumer's partitions"
    assert set(out.ids) == {m.id for m in inputs}, "0 lost"
    assert out.duplicates() == 0, out.duplicates()
    assert second_did.molecules > 0, "the joiner predicted some"
    print(f"slow revoke: first {first_did.molecules}, joiner {second_did.molecules} molecules")


async def test_a_lost_ray_head_stops_the_consumer_cleanly_and_nothing_is_lost(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    inputs = synthetic_molecules(4000)
    await publish(broker.bootstrap_servers, "molecules", inputs)
    ray_timeout_s = 10
    log_path = tmp_path / "consumer.log"

    def argv(cluster: LocalCluster) -> list[str]:
        return consume_command(
            broker.bootstrap_servers,
            cluster.address,
            *("--model", "synthetic", "--model-option", "per_molecule_ms=2"),
            *("--max-workers", "2", "--group-id", "ray-lost"),
            *("--ray-timeout-s", str(ray_timeout_s), "--commit-interval-s", "0.2"),
        )

    async with OutputWatcher(broker.bootstrap_servers) as out:
        first_cluster = LocalCluster()
        first_cluster.start()
        try:
            for _ in range(2):
                first_cluster.add_spot_node()
            with consumer_process(argv(first_cluster), str(log_path)) as proc:
                await wait_until(lambda: out.total >= 300, 120, "progress before the kill")
                os.kill(first_cluster.gcs_pid(), signal.SIGKILL)
                killed = time.monotonic()
                code = await asyncio.to_thread(proc.wait, ray_timeout_s + 30)
                took = time.monotonic() - killed
        finally:
            first_cluster.stop()
        assert code == RAY_LOST_EXIT_CODE, code
        assert took < ray_timeout_s + 10, f"exited {took:.1f} s after the GCS was killed"
        lines = [json.loads(line) for line in log_path.read_text().splitlines() if line]
        lost = [line for line in lines if line.get("event") == "Ray cluster lost: exiting"]
        assert len(lost) == 1 and "GCS" in lost[0]["error"], lost
        done_before = len(out.ids)
        with LocalCluster() as second_cluster:
            for _ in range(2):
                second_cluster.add_spot_node()
            with consumer_process(argv(second_cluster), str(log_path)) as proc:
                await wait_until(lambda: len(out.ids) >= len(inputs), 240, "every molecule")
                proc.send_signal(signal.SIGTERM)
                assert await asyncio.to_thread(proc.wait, 60) == 0
    assert set(out.ids) == {m.id for m in inputs}, "0 lost across the restart"
    print(f"ray head lost: exit {code} after {took:.1f} s; {done_before} done before")


async def test_a_static_member_restarted_within_its_session_keeps_its_partitions(
    broker: EmbeddedBroker, ray_cluster: LocalCluster
) -> None:
    """``--group-instance-id`` (KIP-345): a static member does not leave the group on stop;
    restarted within its session timeout it gets its partitions back and the other member
    sees no rebalance, not even when the old session would have expired. Nothing is lost."""
    for _ in range(2):  # a worker for each member
        ray_cluster.add_spot_node()
    inputs = synthetic_molecules(1500)
    await publish(broker.bootstrap_servers, "molecules", inputs)
    session_timeout_s = 10
    base = {
        "group_id": "static",
        "max_workers": 1,
        "session_timeout_s": session_timeout_s,
        "heartbeat_interval_s": 2,
        "model_option": {"per_molecule_ms": "5"},
    }
    dynamic = settings_for(broker, ray_cluster, **base)
    static = settings_for(broker, ray_cluster, **base, group_instance_id="pod-0")
    every = {TopicPartition("molecules", p) for p in range(4)}

    def shared(member: StreamProcessor, other: StreamProcessor) -> bool:
        return bool(member.consumer.assignment()) and other.consumer.assignment() != every

    async with OutputWatcher(broker.bootstrap_servers) as out, StreamProcessor(dynamic) as stays:
        async with StreamProcessor(static) as pod:
            await wait_until(lambda: shared(pod, stays), 60, "both members share the work")
            before = pod.consumer.assignment()
        revokes_before, restarted = stays.revokes, time.monotonic()
        async with StreamProcessor(static) as pod_again:
            await wait_until(lambda: shared(pod_again, stays), 60, "the restart has partitions")
            rejoined_s = time.monotonic() - restarted
            assert pod_again.consumer.assignment() == before
            # Past the moment the old session would have expired: still no rebalance.
            await asyncio.sleep(max(0.0, restarted + session_timeout_s + 5 - time.monotonic()))
            assert stays.revokes == revokes_before, "the other member saw a rebalance"
            await wait_until(lambda: len(out.ids) >= len(inputs), 120, "every molecule")
    assert set(out.ids) == {m.id for m in inputs}, "0 lost"
    assert out.duplicates() == 0
    print(f"static member restarted: its partitions back after {rejoined_s:.1f} s, no rebalance")
