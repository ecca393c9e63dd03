"""Issue 17 item 7: a stuck batch does not hold the stream. One molecule hangs the model; the
399 behind it are predicted within 60 s of being published and it is FAILED within 180 s, as
plain molecules and registry-framed ones. Real broker, real Ray, three Spot nodes."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from consumer.dev.broker import EmbeddedBroker
from consumer.dev.raycluster import LocalCluster
from consumer.hooks import Hooks
from consumer.pool.replica import ReplicaState
from consumer.processor import StreamProcessor
from consumer.reasons import LossReason
from schemas import Molecule, Status
from tests.harness import OutputWatcher, consumer_settings, publish, synthetic_molecules, wait_until
from tests.integration.registry_helpers import (
    Raw,
    molecule_serializer,
    produce_confluent,
    serialize,
)
from tests.integration.schema_registry import SchemaRegistryServer
from tests.plugins import HANG_MARKER

pytestmark = pytest.mark.integration

OTHERS_WITHIN_S = 60.0
FAILED_WITHIN_S = 180.0


@pytest.fixture
def registry_server() -> Iterator[SchemaRegistryServer]:
    with SchemaRegistryServer() as server:
        yield server


class _Pool(Hooks):
    """The pool's size wanted over time, and why workers were lost."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.resizes: list[tuple[float, int]] = []
        self.losses: list[str] = []

    def pool_state(self, by_state: dict[str, int], desired: int, worker_seconds: float) -> None:
        if not self.resizes or self.resizes[-1][1] != desired:
            self.resizes.append((round(time.monotonic() - self.started, 1), desired))

    def worker_failure(self, reason: LossReason) -> None:
        self.losses.append(str(reason))


async def _publish(
    broker: EmbeddedBroker, inputs: list[Molecule], registry_url: str | None
) -> None:
    if registry_url is None:
        await publish(broker.bootstrap_servers, "molecules", inputs)
        return
    serializer = molecule_serializer(registry_url)
    records: list[Raw] = [
        (m.id.encode(), serialize(serializer, "molecules", m, []), []) for m in inputs
    ]
    await produce_confluent(broker.bootstrap_servers, "molecules", records)


@pytest.mark.timeout(420)
@pytest.mark.parametrize("framing", ["single-object", "registry"])
async def test_a_hanging_molecule_does_not_hold_the_399_behind_it(
    broker: EmbeddedBroker,
    ray_cluster: LocalCluster,
    registry_server: SchemaRegistryServer,
    framing: str,
) -> None:
    for _ in range(3):
        ray_cluster.add_spot_node()
    hung = Molecule(id="hang-1", smiles=HANG_MARKER)
    others = synthetic_molecules(399)
    registry_url = registry_server.url if framing == "registry" else None
    settings = consumer_settings(
        broker.bootstrap_servers,
        ray_cluster.address,
        model="tests.plugins:KillerModel",
        group_id=f"stuck-{framing}",
        min_workers=1,
        max_workers=4,
        batch_size=64,
        batch_timeout_s=10,
        schema_registry_url=registry_url,
    )
    pool = _Pool()
    async with (
        OutputWatcher(broker.bootstrap_servers, registry_url=registry_url) as out,
        StreamProcessor(settings, hooks=pool) as proc,
    ):
        # The minimum pool is up first: what is measured is the stream, not a cold start.
        await wait_until(lambda: proc.pool.counts()[ReplicaState.READY] >= 1, 60, "a worker")
        await _publish(broker, [hung, *others], registry_url)
        published = time.monotonic()
        await wait_until(
            lambda: all(m.id in out.ids for m in others), OTHERS_WITHIN_S, "the 399 others"
        )
        others_s = time.monotonic() - published
        await wait_until(lambda: hung.id in out.ids, FAILED_WITHIN_S - others_s, "the hung one")
        failed_s = time.monotonic() - published
    print(
        f"{framing}: others predicted {others_s:.1f} s after publishing, the hanging one "
        f"FAILED after {failed_s:.1f} s; pool wanted (s, size): {pool.resizes}; "
        f"worker losses: {pool.losses}"
    )
    by_id = {p.id: p for p in out.predictions}
    assert by_id[hung.id].status is Status.FAILED and "timeout" in (by_id[hung.id].error or "")
    assert all(by_id[m.id].status is Status.OK for m in others)
    # The right reason: the pool grew while the stuck batch held a worker (and timed out).
    assert max(size for _, size in pool.resizes) > 1, pool.resizes
    assert "timeout" in pool.losses
