"""Watching the Ray head: a consumer whose GCS is gone must stop cleanly, not be aborted.

When the GCS dies, Ray's core worker keeps the process alive for about a minute and then aborts
it, with no shutdown: nothing committed, nothing logged that an operator can act on. The
watchdog probes the GCS with a bounded round trip and raises :class:`RayLostError` once it has
been silent for half of ``timeout_s``, which leaves the other half for the shutdown.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import structlog

from consumer.errors import RayLostError

log = structlog.get_logger(__name__)

_PROBE_KEY = b"molstream-probe"


def probe_gcs(timeout_s: float) -> None:
    """One round trip to the GCS this process is connected to (blocking; raises when it does
    not answer within ``timeout_s``)."""
    from ray._private.worker import global_worker

    client: Any = global_worker.gcs_client  # type: ignore[attr-defined]
    client.internal_kv_exists(_PROBE_KEY, b"molstream", timeout=timeout_s)


class RayWatchdog:
    """Probes the GCS every ``timeout_s / 6``; :meth:`watch` raises when it is lost."""

    def __init__(
        self,
        *,
        timeout_s: float,
        probe: Callable[[float], None] = probe_gcs,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._timeout_s = timeout_s
        self._probe = probe
        self._clock = clock
        self.lost = False

    @property
    def silence_limit_s(self) -> float:
        """How long the GCS may be silent before the consumer gives up on it."""
        return self._timeout_s / 2

    async def watch(self) -> None:
        """Run until cancelled, or raise :class:`RayLostError` when the GCS is gone."""
        interval_s = self._timeout_s / 6
        last_ok = self._clock()
        while True:
            try:
                # The probe is bounded by its own timeout; wait_for guards against one that
                # is not (the thread then ends with the process).
                await asyncio.wait_for(asyncio.to_thread(self._probe, interval_s), interval_s * 2)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                silent_s = self._clock() - last_ok
                log.warning(
                    "Ray head (GCS) not answering",
                    silent_s=round(silent_s, 1),
                    limit_s=self.silence_limit_s,
                    error=f"{type(exc).__name__}: {exc}",
                )
                if silent_s >= self.silence_limit_s:
                    self.lost = True
                    raise RayLostError(silent_s) from exc
                continue  # the failed probe took its time already: probe again at once
            last_ok = self._clock()
            await asyncio.sleep(interval_s)
