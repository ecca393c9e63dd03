"""Plugins may return a ModelResult, a mapping of numbers or a number per molecule; anything
else fails the batch once, with one clear error (real broker, real Ray)."""

from __future__ import annotations

import pytest

from consumer.dev.broker import EmbeddedBroker
from consumer.dev.raycluster import LocalCluster
from consumer.processor import StreamProcessor
from schemas import Status
from tests.harness import (
    OutputWatcher,
    consumer_settings,
    publish,
    read_raw,
    synthetic_molecules,
    wait_until,
)

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("plugin", "outputs"),
    [("tests.plugins:DictModel", {"length"}), ("tests.plugins:FloatModel", {"value"})],
)
async def test_plain_mappings_and_numbers_are_ok_predictions(
    broker: EmbeddedBroker, ray_cluster: LocalCluster, plugin: str, outputs: set[str]
) -> None:
    ray_cluster.add_spot_node()
    inputs = synthetic_molecules(50)
    await publish(broker.bootstrap_servers, "molecules", inputs)
    settings = consumer_settings(
        broker.bootstrap_servers, ray_cluster.address, model=plugin, max_workers=1
    )
    async with OutputWatcher(broker.bootstrap_servers) as out, StreamProcessor(settings):
        await wait_until(lambda: len(out.ids) >= len(inputs), 120, "a prediction per input")
    assert {p.status for p in out.predictions} == {Status.OK}
    assert all(set(p.outputs) == outputs for p in out.predictions)
    by_id = {p.id: p for p in out.predictions}
    assert all(max(by_id[m.id].outputs.values()) == len(m.smiles) for m in inputs)


async def test_a_plugin_returning_strings_fails_each_batch_once_with_one_message(
    broker: EmbeddedBroker, ray_cluster: LocalCluster
) -> None:
    ray_cluster.add_spot_node()
    inputs = synthetic_molecules(40)
    await publish(broker.bootstrap_servers, "molecules", inputs)
    settings = consumer_settings(
        broker.bootstrap_servers,
        ray_cluster.address,
        model="tests.plugins:StringModel",
        max_workers=1,
        batch_size=20,
    )
    async with OutputWatcher(broker.bootstrap_servers) as out, StreamProcessor(settings):
        await wait_until(lambda: len(out.ids) >= len(inputs), 120, "a prediction per input")
    assert {p.status for p in out.predictions} == {Status.FAILED}
    assert {p.attempts for p in out.predictions} == {1}, "no retries, no splits"
    (message,) = {p.error for p in out.predictions}
    assert message == (
        "model 'tests.plugins:StringModel' returned str ('active') for a molecule; "
        "expected a ModelResult, a mapping of output names to numbers, or a number"
    )
    letters = await read_raw(broker.bootstrap_servers, "molecules.dlq")
    assert len(letters) == len(inputs)
