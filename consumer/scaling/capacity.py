"""The cluster-wide capacity request: every consumer's share of it, summed.

Ray keeps one ``request_resources`` request per cluster, and each call replaces the last: two
consumers on one cluster calling it would overwrite each other. So each consumer sends its
share (``count`` copies of its worker bundle) to one named actor on the head node,
:class:`CapacityBook`, which requests the sum. A share not refreshed within its TTL is
dropped, so a consumer that crashed without withdrawing does not hold capacity forever.

Ray is imported only where it is used: the pure part is unit-tested without it, and importing
this module keeps ``molstream consume``'s start-up light.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from consumer.lifecycle import Lifecycle

Bundle = dict[str, float]

SHARE_TTL_S = 60.0
"""How long a share counts without being refreshed. Consumers refresh theirs every scaling tick
(1 s by default), so a minute is sixty missed ticks (a long GC pause or GCS hiccup is not a
crash), and a crashed consumer's share still goes well before an idle node would (minutes)."""
TTL_TICKS = 10
"""A share outlives at least this many ticks of its consumer, whatever the tick interval."""
EXPIRY_CHECK_S = 1.0
"""How often the actor looks for expired shares: cheap, it calls Ray only when the sum changed."""
CALL_TIMEOUT_S = 5.0
"""Longest wait for the actor to answer (it may be restarting, or the GCS away)."""

ACTOR_NAME = "molstream-capacity"
NAMESPACE = "molstream"
# Ray gives every head node this resource: the actor lives with the GCS, not on a Spot node.
HEAD_NODE_RESOURCE = "node:__internal_head__"

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Share:
    """One consumer's part of the request: ``count`` copies of ``bundle``, last refreshed at
    ``refreshed_at`` (monotonic seconds), counted for ``ttl_s`` after that."""

    bundle: Bundle
    count: int
    refreshed_at: float
    ttl_s: float = SHARE_TTL_S

    def __post_init__(self) -> None:
        if self.count < 0 or self.ttl_s <= 0:
            raise ValueError(f"need count >= 0 and ttl_s > 0, got {self.count}, {self.ttl_s}")


def live_shares(shares: Mapping[str, Share], now: float) -> dict[str, Share]:
    """The shares refreshed within their TTL at ``now``."""
    return {cid: s for cid, s in shares.items() if now - s.refreshed_at <= s.ttl_s}


def summed_bundles(shares: Mapping[str, Share], now: float) -> list[Bundle]:
    """The bundles every live share asks for, together (by consumer id, so a sum that did not
    change compares equal)."""
    live = live_shares(shares, now)
    return [dict(live[cid].bundle) for cid in sorted(live) for _ in range(live[cid].count)]


def share_ttl_s(interval_s: float) -> float:
    """The TTL of the share of a consumer that refreshes it every ``interval_s``."""
    return max(SHARE_TTL_S, TTL_TICKS * interval_s)


def new_consumer_id(group_id: str) -> str:
    """A name for this consumer process's share, unique across restarts and hosts."""
    return f"{group_id}/{socket.gethostname()}/{os.getpid()}/{uuid.uuid4().hex[:8]}"


class CapacityBook:
    """The Ray actor that keeps Ray's request equal to the sum of the live shares.

    Wrapped with ``ray.remote`` by :class:`CapacityClient`. After a restart it starts empty
    and every consumer's next tick fills it again.
    """

    def __init__(self) -> None:
        self._shares: dict[str, Share] = {}
        self._published: list[Bundle] | None = None
        # Calls and the expiry thread both publish: one at a time, each the latest sum.
        self._lock = threading.Lock()
        threading.Thread(target=self._expire_routine, name="capacity-expiry", daemon=True).start()

    def set_share(self, consumer_id: str, bundle: Bundle, count: int, ttl_s: float) -> None:
        """Set (or refresh) one consumer's share and request the new sum."""
        share = Share(dict(bundle), count, time.monotonic(), ttl_s)
        with self._lock:
            self._shares[consumer_id] = share
            self._publish()

    def withdraw(self, consumer_id: str) -> None:
        """Drop one consumer's share and request what the others want."""
        with self._lock:
            self._shares.pop(consumer_id, None)
            self._publish()

    def _publish(self) -> None:
        now = time.monotonic()
        self._shares = live_shares(self._shares, now)
        total = summed_bundles(self._shares, now)
        if total != self._published:
            from ray.autoscaler.sdk import request_resources

            request_resources(bundles=total)
            self._published = total

    def _expire_routine(self) -> None:
        while True:
            time.sleep(EXPIRY_CHECK_S)
            try:
                with self._lock:
                    self._publish()
            except Exception:  # the GCS away: the next check tries again
                log.warning("could not update the capacity request", exc_info=True)


class CapacityClient(Lifecycle):
    """This consumer's side of :class:`CapacityBook`: sends its share, withdraws it on stop.

    Every call waits for the actor's answer, up to ``timeout_s``.
    """

    def __init__(
        self,
        consumer_id: str,
        bundle: Bundle,
        *,
        ttl_s: float = SHARE_TTL_S,
        timeout_s: float = CALL_TIMEOUT_S,
    ) -> None:
        self.consumer_id = consumer_id
        self._bundle = dict(bundle)
        self._ttl_s = ttl_s
        self._timeout_s = timeout_s
        self._book: Any = None

    async def start(self) -> None:
        """Get the cluster's capacity actor, or create it if no consumer has yet."""
        if self._book is None:
            await self._get_book()

    async def request(self, count: int) -> None:
        """Ask for ``count`` bundles as this consumer's share (replacing the last one)."""
        from ray.exceptions import ActorDiedError

        if self._book is None:
            raise RuntimeError("the capacity client is not started")
        ref = self._book.set_share.remote(self.consumer_id, self._bundle, count, self._ttl_s)
        try:
            async with asyncio.timeout(self._timeout_s):
                await ref
        except ActorDiedError:
            # It restarts forever, so it was killed on purpose: the next request gets a new one.
            await self._get_book()
            raise

    async def stop(self) -> None:
        """Withdraw this consumer's share (the others' stay); safe twice. If the actor cannot
        be reached, the share goes when its TTL runs out."""
        book, self._book = self._book, None
        if book is not None:
            async with asyncio.timeout(self._timeout_s):
                await book.withdraw.remote(self.consumer_id)

    async def _get_book(self) -> None:
        async with asyncio.timeout(self._timeout_s):
            self._book = await asyncio.to_thread(_get_or_create)


def _get_or_create() -> Any:
    """The named actor (blocking: a GCS lookup); concurrent creators get the same one."""
    import ray

    return (
        ray.remote(CapacityBook)
        .options(
            name=ACTOR_NAME,
            namespace=NAMESPACE,
            lifetime="detached",  # outlives the consumer that happened to create it
            get_if_exists=True,
            num_cpus=0,
            resources={HEAD_NODE_RESOURCE: 0.001},
            max_restarts=-1,
        )
        .remote()
    )
