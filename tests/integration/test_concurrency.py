"""``--worker-concurrency``: one worker computes several batches at once (real broker, real
Ray), and the pool hands out that many slots per worker."""

from __future__ import annotations

import pytest

from consumer.dev.broker import EmbeddedBroker
from consumer.dev.raycluster import LocalCluster
from consumer.processor import StreamProcessor
from schemas import Status
from tests.harness import OutputWatcher, consumer_settings, publish, synthetic_molecules, wait_until

pytestmark = pytest.mark.integration


async def test_one_worker_computes_four_batches_at_once(
    broker: EmbeddedBroker, ray_cluster: LocalCluster
) -> None:
    ray_cluster.add_spot_node()
    inputs = synthetic_molecules(80)
    await publish(broker.bootstrap_servers, "molecules", inputs)
    settings = consumer_settings(
        broker.bootstrap_servers,
        ray_cluster.address,
        model="tests.plugins:OverlapModel",
        min_workers=1,
        max_workers=1,
        worker_concurrency=4,
        batch_size=5,
    )
    async with OutputWatcher(broker.bootstrap_servers) as out, StreamProcessor(settings) as proc:
        await wait_until(lambda: len(out.ids) >= len(inputs), 120, "a prediction per input")
        assert [w.slots for w in proc.pool.workers()] == [4]
    assert len(out.predictions) == len(inputs), "no duplicates"
    assert {p.status for p in out.predictions} == {Status.OK}
    assert len({p.worker for p in out.predictions}) == 1
    assert max(p.outputs["concurrent"] for p in out.predictions) == 4.0
