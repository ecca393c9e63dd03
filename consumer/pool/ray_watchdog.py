"""Watching the Ray head: a consumer whose GCS is gone must stop cleanly, not be aborted; one
whose GCS is merely slow must keep going.

When the GCS dies, Ray's core worker keeps the process alive for about a minute and then aborts
it, with no shutdown: nothing committed, nothing logged that an operator can act on. The
watchdog probes the GCS with a bounded round trip and raises :class:`RayLostError` once it has
been unreachable for half of ``timeout_s``, which leaves the other half for the shutdown.

A busy head (a big pool starting on few cores) answers late rather than not at all: to Ray's
client that is ``Deadline Exceeded`` over a live connection, while a gone head is "Timed out
while waiting for GCS to become available". Slow probes are counted and tolerated; only a head
that has not answered anything for the whole ``timeout_s`` (stopped, or hopelessly slow) is
lost that way too.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, Literal

import structlog

from consumer.errors import RayLostError

log = structlog.get_logger(__name__)

_PROBE_KEY = b"molstream-probe"
_UNREACHABLE_MARKERS = ("become available", "unavailable", "unreachable", "disconnected", "refused")

HeadErrorKind = Literal["slow", "unreachable"]
HeadState = Literal["ok", "slow", "unreachable"]


def probe_gcs(timeout_s: float) -> None:
    """One round trip to the GCS this process is connected to (blocking; raises when it does
    not answer within ``timeout_s``)."""
    from ray._private.worker import global_worker

    client: Any = global_worker.gcs_client  # type: ignore[attr-defined]
    client.internal_kv_exists(_PROBE_KEY, b"molstream", timeout=timeout_s)


def classify_gcs_error(exc: BaseException) -> HeadErrorKind:
    """``slow`` for a probe that ran out of time over a live connection (Ray's "RPC error:
    Deadline Exceeded", or our own guard's TimeoutError); ``unreachable`` for anything else:
    Ray's "Timed out while waiting for GCS to become available" (refused or gone: its client
    queues the call until the timeout), UNAVAILABLE, a disconnected client, and errors not
    known to be harmless. By message: Ray gives both of its timeouts gRPC code
    DEADLINE_EXCEEDED."""
    if isinstance(exc, TimeoutError):
        return "slow"
    text = str(exc).lower()
    if any(marker in text for marker in _UNREACHABLE_MARKERS):
        return "unreachable"
    return "slow" if "deadline exceeded" in text else "unreachable"


class RayWatchdog:
    """Probes the GCS every ``timeout_s / 6``; :meth:`watch` raises when it is lost.

    ``on_error`` hears the kind of every failed or late probe (for metrics); :attr:`state` and
    :meth:`answered_s_ago` say what the last probe found (for the status endpoint).
    """

    def __init__(
        self,
        timeout_s: float,
        *,
        probe: Callable[[float], None] = probe_gcs,
        clock: Callable[[], float] = time.monotonic,
        on_error: Callable[[HeadErrorKind], None] = lambda kind: None,
    ) -> None:
        self._timeout_s = timeout_s
        self._probe = probe
        self._clock = clock
        self._on_error = on_error
        self._last_ok = clock()
        self.state: HeadState = "ok"
        self.lost = False

    @property
    def unreachable_limit_s(self) -> float:
        """How long the GCS may be unreachable before the consumer gives up on it."""
        return self._timeout_s / 2

    @property
    def silence_limit_s(self) -> float:
        """How long the GCS may answer nothing at all (only late) before it counts as lost."""
        return self._timeout_s

    def answered_s_ago(self) -> float:
        """Time since the GCS last answered a probe."""
        return self._clock() - self._last_ok

    async def watch(self) -> None:
        """Run until cancelled, or raise :class:`RayLostError` when the GCS is gone."""
        interval_s = self._timeout_s / 6
        self._last_ok = self._clock()
        probe_timeout_s = interval_s
        while True:
            started = self._clock()
            try:
                # The probe is bounded by its own timeout; this guards against one that is
                # not (the thread then ends with the process).
                async with asyncio.timeout(probe_timeout_s + interval_s):
                    await asyncio.to_thread(self._probe, probe_timeout_s)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._failed(classify_gcs_error(exc), exc)
                probe_timeout_s = self._next_timeout_s(interval_s)
                # A probe that failed at once (refused) waits out the interval: no busy loop;
                # one that took its time already probes again at once.
                await asyncio.sleep(max(0.0, interval_s - (self._clock() - started)))
                continue
            self._answered(self._clock() - started, interval_s)
            probe_timeout_s = self._next_timeout_s(interval_s)
            await asyncio.sleep(interval_s)

    def _next_timeout_s(self, interval_s: float) -> float:
        if self.state != "slow":
            return interval_s
        # A slow head may still answer: wait for it up to the silence limit, instead of
        # giving up on each answer before it can come.
        return max(interval_s, self.silence_limit_s - self.answered_s_ago())

    def _failed(self, kind: HeadErrorKind, exc: Exception) -> None:
        self.state = kind
        self._on_error(kind)
        silent_s = self.answered_s_ago()
        limit_s = self.unreachable_limit_s if kind == "unreachable" else self.silence_limit_s
        log.warning(
            "Ray head (GCS) slow" if kind == "slow" else "Ray head (GCS) not answering",
            silent_s=round(silent_s, 1),
            limit_s=limit_s,
            error=f"{type(exc).__name__}: {exc}",
        )
        if silent_s >= limit_s:
            self.lost = True
            raise RayLostError(silent_s) from exc

    def _answered(self, took_s: float, interval_s: float) -> None:
        self._last_ok = self._clock()
        if took_s > interval_s:
            self.state = "slow"
            self._on_error("slow")
            log.warning("Ray head (GCS) slow", answered_in_s=round(took_s, 1))
        else:
            self.state = "ok"
