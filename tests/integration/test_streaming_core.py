"""Issue 2 acceptance: the whole path with a real broker and a real two-node Ray cluster."""

from __future__ import annotations

from collections import Counter

import pytest

from consumer.dev.broker import EmbeddedBroker
from consumer.dev.raycluster import SPOT_RESOURCE, LocalCluster
from consumer.models.reference import OUTPUTS
from consumer.processor import StreamProcessor
from consumer.settings import ConsumerSettings
from schemas import Molecule, Status
from tests.harness import Counting, committed, nci, publish, read_all, wait_until

pytestmark = pytest.mark.integration


INVALID = [Molecule(id=f"bad-{i}", smiles=f"C1CC(invalid{i}") for i in range(20)]


async def test_every_input_gets_one_prediction_and_offsets_reach_the_end(
    broker: EmbeddedBroker, ray_cluster: LocalCluster
) -> None:
    for _ in range(2):
        ray_cluster.add_spot_node()
    molecules = nci(2000) + INVALID
    ends = await publish(broker.bootstrap_servers, "molecules", molecules)

    settings = ConsumerSettings(
        bootstrap_servers=broker.bootstrap_servers,
        ray_address=ray_cluster.address,
        worker_resources={SPOT_RESOURCE: 1},
        min_workers=2,
        max_workers=2,
        group_id="core-test",
        commit_interval_s=0.2,
    )
    hooks = Counting()
    async with StreamProcessor(settings, hooks=hooks) as processor:
        await wait_until(lambda: hooks.predictions >= len(molecules), 180, "all predictions")
        await wait_until(lambda: processor.committed == ends, 10, "commits reach the end")

    predictions = await read_all(broker.bootstrap_servers, "predictions")
    by_id = Counter(p.id for p in predictions)
    assert set(by_id) == {m.id for m in molecules}
    assert max(by_id.values()) == 1, "exactly one prediction per input id"
    invalid_ids = {m.id for m in INVALID}
    for p in predictions:
        if p.id in invalid_ids:
            assert p.status is Status.INVALID_INPUT, p
            assert p.error
        else:
            assert p.status is Status.OK, p
            assert set(p.outputs) == set(OUTPUTS)
            assert p.model == "reference" and p.model_version and p.worker
        assert p.source_topic == "molecules" and p.attempts == 1
    assert len(hooks.by_worker) == 2, "both workers took work"
    assert await committed(broker.bootstrap_servers, "core-test", ends) == ends
