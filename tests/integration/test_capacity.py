"""Issue 12: consumers sharing one Ray cluster ask for the sum of what each wants, read back
from where Ray's autoscaler (v1 and v2) reads its ``request_resources`` request."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
import ray

from consumer.dev.raycluster import SPOT_RESOURCE, LocalCluster
from consumer.pool import ray_runtime
from consumer.scaling.capacity import ACTOR_NAME, NAMESPACE, CapacityClient, new_consumer_id
from tests.harness import wait_until

pytestmark = pytest.mark.integration

SPOT = {"CPU": 1.0, SPOT_RESOURCE: 1.0}
TICK_S = 0.5


@pytest.fixture(scope="module", params=["v1", "v2"])
def cluster(request: pytest.FixtureRequest) -> Iterator[str]:
    """A head node (this process joined to it) whose GCS runs autoscaler v1's or v2's side;
    one per version for the module (each test withdraws what it asked for)."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("RAY_enable_autoscaler_v2", "1" if request.param == "v2" else "0")
        with LocalCluster() as local:
            ray_runtime.connect(local.address)
            try:
                yield request.param
            finally:
                ray_runtime.disconnect()


def requested(version: str) -> list[dict[str, float]]:
    """The bundles Ray's autoscaler is asked for, read where that autoscaler reads them."""
    if version == "v2":
        # What autoscaler v2's reconcile loop reads (ray/autoscaler/v2/autoscaler.py).
        from ray._raylet import GcsClient  # type: ignore[attr-defined]
        from ray.autoscaler.v2.sdk import get_cluster_resource_state

        address = ray.get_runtime_context().gcs_address
        state: Any = get_cluster_resource_state(GcsClient(address=address))
        return [
            dict(by_count.request.resources_bundle)
            for constraint in state.cluster_resource_constraints
            for by_count in constraint.resource_requests
            for _ in range(by_count.count)
        ]
    # What autoscaler v1's monitor reads (Monitor.update_resource_requests).
    from ray._private.ray_constants import AUTOSCALER_RESOURCE_REQUEST_CHANNEL
    from ray.experimental.internal_kv import _internal_kv_get

    raw = _internal_kv_get(AUTOSCALER_RESOURCE_REQUEST_CHANNEL)
    bundles: list[dict[str, float]] = json.loads(raw) if raw else []
    return bundles


def client(group: str, ttl_s: float = 60.0) -> CapacityClient:
    return CapacityClient(new_consumer_id(group), SPOT, ttl_s=ttl_s)


async def test_two_consumers_requests_add_up_and_each_withdraws_only_its_own(
    cluster: str,
) -> None:
    first, second = client("group-a"), client("group-b")
    async with first, second:
        await first.request(3)
        await second.request(2)
        assert requested(cluster) == [SPOT] * 5
        await first.request(1)  # a tick that changed its mind replaces its share
        assert requested(cluster) == [SPOT] * 3
        await first.stop()
        assert requested(cluster) == [SPOT] * 2
    assert requested(cluster) == []


@pytest.mark.parametrize("cluster", ["v1"], indirect=True)
async def test_a_vanished_consumer_expires_and_a_lost_actor_is_rebuilt(cluster: str) -> None:
    alive, crashed, latecomer = client("group-a"), client("group-b", ttl_s=1.0), client("group-c")
    await crashed.start()
    async with alive, latecomer:
        await alive.request(2)
        await crashed.request(3)  # and never again, nor a withdrawal: the process died
        assert requested(cluster) == [SPOT] * 5
        await wait_until(lambda: requested(cluster) == [SPOT] * 2, 10, "the crashed share expires")

        # A restarted actor starts empty; the next requests of the consumers fill it again.
        book = ray.get_actor(ACTOR_NAME, namespace=NAMESPACE)
        _, restarts = actor_state(book)
        ray.kill(book, no_restart=False)
        await wait_until(lambda: actor_state(book) == ("ALIVE", restarts + 1), 30, "a restart")
        await until_accepted(alive, 2)
        await latecomer.request(1)
        assert requested(cluster) == [SPOT] * 3

        # Killed for good: a request fails once, the next one makes (or finds) a new actor.
        ray.kill(book, no_restart=True)
        await wait_until(lambda: actor_state(book)[0] == "DEAD", 30, "the actor is dead")
        await until_accepted(alive, 2)
        await until_accepted(latecomer, 1)
        assert requested(cluster) == [SPOT] * 3
        await latecomer.stop()
        assert requested(cluster) == [SPOT] * 2
    assert requested(cluster) == []


def actor_state(handle: Any) -> tuple[str, int]:
    """The actor's state and restarts, from the GCS's actor table."""
    from ray._private.state import actors

    row: dict[str, Any] = actors(actor_id=handle._actor_id.hex())
    return str(row["State"]), int(row["NumRestarts"])


async def until_accepted(capacity: CapacityClient, count: int, attempts: int = 10) -> None:
    """Send a share as the scaling loop does, once a tick, until the actor takes it."""
    last: Exception | None = None
    for _ in range(attempts):
        try:
            await capacity.request(count)
            return
        except Exception as exc:
            last = exc
        await asyncio.sleep(TICK_S)
    raise AssertionError(f"no request accepted in {attempts} attempts: {last!r}")
